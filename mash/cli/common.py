"""What every command shares: one readable error line and documented exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable
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


def grpc_failure(exc: grpc.RpcError) -> NoReturn:
    code = exc.code()
    details = (exc.details() or "").splitlines()[0] if exc.details() else ""
    if code == grpc.StatusCode.UNAVAILABLE:
        details = f"the broker is unreachable ({details or 'no connection'})"
    fail(f"{code.name.lower()}: {details}", GRPC_EXIT.get(code, FAILED))


def guarded(fn: Callable[[], T]) -> T:
    """Run a command body, turning known failures into one line and an exit code."""
    try:
        return fn()
    except (ConfigError, ValidationError) as exc:
        fail(str(exc), USAGE)
    except MashError as exc:
        fail(str(exc), FAILED)
    except grpc.RpcError as exc:
        grpc_failure(exc)
    except KeyboardInterrupt:
        fail("interrupted", FAILED)
    except OSError as exc:
        fail(f"{exc.strerror or exc} {getattr(exc, 'filename', '') or ''}".strip(), FAILED)
