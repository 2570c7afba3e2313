"""Structured logging: one JSON object per line, never personal data.

Callers log events and pseudonymous references (lookup ids, agency ids, counts). As a second
line of defence, any key that names personal data is replaced before the line is written.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

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


def drop_personal_data(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in event_dict.keys() & PERSONAL_KEYS:
        event_dict[key] = REDACTED
    return event_dict


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
            structlog.processors.format_exc_info,
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


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(component=name.removeprefix("mash."))
