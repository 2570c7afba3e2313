"""Structured logging: one JSON object per line, never personal data.

Callers log events and pseudonymous references (lookup ids, agency ids, counts). As a second
line of defence, any key that names personal data is replaced before the line is written.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, FilteringBoundLogger

# Keys that would carry personal data about a subject. Their values never reach a log line.
PERSONAL_KEYS = frozenset(
    {
        "name",
        "names",
        "given",
        "family",
        "middle",
        "alias",
        "aliases",
        "dob",
        "date_of_birth",
        "postcode",
        "postcodes",
        "address",
        "addresses",
        "nhs_number",
        "upn",
        "pnc_id",
        "ni_number",
        "identifier",
        "identifiers",
        "subject",
        "record",
        "fields",
        "justification",
        "token",
        "analyst_token",
    }
)
REDACTED = "[redacted]"


def drop_personal_data(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    for key in event_dict.keys() & PERSONAL_KEYS:
        event_dict[key] = REDACTED
    return event_dict


def exception_without_message(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """`log.exception(...)` writes where an error happened, never what it said.

    An exception's message may quote the value it failed on (a database error quoting an NHS
    number, a date parser quoting a date of birth), so the line gets the exception's class and
    its frames (file:line function), and the same for each exception it was raised from.
    """
    exc_info = event_dict.pop("exc_info", None)
    if not exc_info:
        return event_dict
    if isinstance(exc_info, BaseException):
        exc: BaseException | None = exc_info
    elif isinstance(exc_info, tuple):
        exc = exc_info[1]
    else:
        exc = sys.exc_info()[1]
    if exc is not None:
        event_dict["exception"] = describe_exception(exc)
    return event_dict


def describe_exception(exc: BaseException, limit: int = 3) -> str:
    """`ValueError at index.py:12 search <- state.py:40 load; from KeyError at ...`:
    classes and frames only, innermost frame first (at most 12 frames each)."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(parts) < limit:
        seen.add(id(current))
        frames = traceback.extract_tb(current.__traceback__)[-12:]
        where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}"
                            for f in reversed(frames))
        parts.append(f"{type(current).__name__}" + (f" at {where}" if where else ""))
        current = current.__cause__ or (None if current.__suppress_context__
                                        else current.__context__)
    return "; from ".join(parts)


def configure(level: str = "info", stream: TextIO | None = None, service: str = "mash",
              cache: bool = False) -> None:
    """Configure structlog for JSON lines on `stream` (stderr by default).

    `cache`: for a process that configures logging once (a server), each module's logger is
    built at its first use and kept, rather than rebuilt on every call (a measurable cost
    per lookup); loggers cached this way ignore a later `configure`, so tests leave it off."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}: use debug, info, warning or error")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            drop_personal_data,
            exception_without_message,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=cache,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    # grpc and other libraries log through the standard library: keep them quiet and JSON-free
    # of payloads; their warnings still reach stderr.
    logging.basicConfig(level=logging.WARNING, stream=stream or sys.stderr)


def get_logger(name: str) -> FilteringBoundLogger:
    # structlog.get_logger is typed Any: configure() makes every logger a filtering bound one
    logger: FilteringBoundLogger = structlog.get_logger(component=name.removeprefix("mash."))
    return logger
