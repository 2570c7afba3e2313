"""What every command shares: one readable error line and documented exit codes."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar

import grpc

from mash.errors import ConfigError, MashError, ValidationError

# Exit codes (documented in the README).
OK = 0
FAILED = 1  # anything not below
USAGE = 2  # bad arguments or invalid input
PARTIAL = 3  # the lookup ran, but at least one agency was NOT_CHECKED
REFUSED = 4  # authentication or authorisation refused
UNAVAILABLE = 5  # the broker could not be reached or did not answer in time
LIMITED = 6  # rate limit reached

T = TypeVar("T")


def fail(message: str, code: int = FAILED) -> NoReturn:
    print(f"mash: error: {message}", file=sys.stderr)
    raise SystemExit(code)


GRPC_EXIT = {
    grpc.StatusCode.INVALID_ARGUMENT: USAGE,
    grpc.StatusCode.FAILED_PRECONDITION: USAGE,
    grpc.StatusCode.OUT_OF_RANGE: USAGE,
    grpc.StatusCode.UNAUTHENTICATED: REFUSED,
    grpc.StatusCode.PERMISSION_DENIED: REFUSED,
    grpc.StatusCode.UNAVAILABLE: UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED: LIMITED,
}


# A broker's BadRequest field path -> the option it came from (None: no one option).
OptionFor = Callable[[str], str | None]
_PATH = re.compile(r"(?:query\.)?(?:subject|context)(?:\.[a-z_]+|\[\d+\])*")


def problems(lines: Sequence[str], code: int = USAGE) -> NoReturn:
    """Every problem found, one line each, then exit."""
    for line in lines:
        print(f"mash: error: {line}", file=sys.stderr)
    raise SystemExit(code)


def say(field: str, description: str, options: OptionFor | None) -> str:
    """A field violation in the user's terms: the option, not the protobuf field path."""
    option = options(field) if options is not None else None
    if option is None:
        return description
    match = _PATH.match(description)
    if match:  # "subject.date_of_birth is in the future" -> "--dob is in the future"
        rest = description[match.end():]
        same = match.group(0).removeprefix("query.") == field.removeprefix("query.")
        return f"{option}{rest}" if same else f"{option}: {description}"
    return f"{option}: {description}"


def grpc_failure(exc: grpc.RpcError, *, options: OptionFor | None = None) -> NoReturn:
    """One line for a refusal; with field violations (mash.client.BrokerError), one line for
    each, naming the option when `options` knows it."""
    code = exc.code()
    violations = getattr(exc, "violations", ())
    if violations and code == grpc.StatusCode.INVALID_ARGUMENT:
        problems([f"{code.name.lower()}: {say(v.field, v.description, options)}"
                  for v in violations], GRPC_EXIT.get(code, FAILED))
    details = (exc.details() or "").splitlines()[0] if exc.details() else ""
    if code == grpc.StatusCode.UNAVAILABLE:
        details = f"the broker is unreachable ({details or 'no connection'})"
    fail(f"{code.name.lower()}: {details}", GRPC_EXIT.get(code, FAILED))


def guarded(fn: Callable[[], T], *, options: OptionFor | None = None) -> T:
    """Run a command body, turning known failures into one line and an exit code (a line
    for each invalid field, named by its option through `options`)."""
    try:
        return fn()
    except (ConfigError, ValidationError) as exc:
        fail(str(exc), USAGE)
    except grpc.RpcError as exc:  # before MashError: a BrokerError is both
        grpc_failure(exc, options=options)
    except MashError as exc:
        fail(str(exc), FAILED)
    except KeyboardInterrupt:
        fail("interrupted", FAILED)
    except OSError as exc:
        fail(f"{exc.strerror or exc} {getattr(exc, 'filename', '') or ''}".strip(), FAILED)
