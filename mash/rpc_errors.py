"""Errors people and programs can act on: a gRPC status with `google.rpc.Status` details.

Every refusal the broker sends keeps its readable message (the gRPC status details) and adds,
in the `grpc-status-details-bin` trailer, a `google.rpc.Status` with the same code and message
and these details (docs/protocol.md, "Errors"):

- `ErrorInfo`: a stable machine `reason` (UPPER_SNAKE, one of REASONS) in the domain
  `mash.exchange`, and metadata that is never personal data;
- `BadRequest`: every invalid field at once, each as its path (`subject.date_of_birth`) and
  the rule it broke, never the value given;
- `RetryInfo`: how long to wait before trying again, where a retry can succeed.

The client reads them back with `details_of` (mash/client.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2

# googleapis-common-protos ships .pyi files but no py.typed marker: its messages are Any here
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from mash import context as context_mod
from mash import subject as subject_mod
from mash.errors import ValidationError
from mash.v1 import subject_pb2

DOMAIN = "mash.exchange"

# reason -> (the status code it comes with, when it is sent); docs/protocol.md has the table
# and tests/test_protocol_doc.py keeps the two the same
_S = grpc.StatusCode
REASONS: dict[str, tuple[grpc.StatusCode, str]] = {
    # INVALID_ARGUMENT, with a BadRequest
    "MALFORMED_MESSAGE": (_S.INVALID_ARGUMENT,
                          "a message did not decode (broken protobuf, text that is not UTF-8)"),
    "INVALID_SUBJECT": (_S.INVALID_ARGUMENT,
                        "the subject has invalid fields (and the context may too)"),
    "INVALID_CONTEXT": (_S.INVALID_ARGUMENT, "the request context has invalid fields"),
    "INVALID_LOOKUP_ID": (_S.INVALID_ARGUMENT,
                          "lookup_id is not 32 lowercase hex digits, or a retry has none"),
    "TOO_MANY_ATTEMPTS": (_S.INVALID_ARGUMENT,
                          "attempt is above the broker's limit: start a new lookup"),
    "UNKNOWN_PURPOSE": (_S.INVALID_ARGUMENT, "the routing policy knows no such purpose"),
    "UNKNOWN_STAGE": (_S.INVALID_ARGUMENT,
                      "the routing policy knows no such stage for the purpose"),
    "UNKNOWN_AGENCY": (_S.INVALID_ARGUMENT,
                       "an agency filter names an agency that is not registered"),
    "INVALID_BLIND_QUERY": (_S.INVALID_ARGUMENT,
                            "a blind lookup's query or round two is malformed"),
    # FAILED_PRECONDITION
    "APPROVAL_REFUSED": (_S.FAILED_PRECONDITION,
                         "the stage needs a stage approval, and it is missing or refused"),
    "OUT_OF_ORDER": (_S.FAILED_PRECONDITION,
                     "a stream's message came at the wrong step (hello first, then ...)"),
    # UNAUTHENTICATED
    "UNAUTHENTICATED_TOKEN": (_S.UNAUTHENTICATED,
                              "the analyst token is missing, invalid, expired or not trusted"),
    "TOKEN_BINDING_REFUSED": (_S.UNAUTHENTICATED,
                              "the token is not bound to the client certificate it came with"),
    "PROOF_REFUSED": (_S.UNAUTHENTICATED,
                      "the lookup's request proof is missing, invalid or replayed"),
    # PERMISSION_DENIED
    "NO_MASH_IDENTITY": (_S.PERMISSION_DENIED, "the client certificate carries no MASH identity"),
    "WRONG_CERTIFICATE_KIND": (_S.PERMISSION_DENIED,
                               "the certificate is of a kind that may not call this RPC"),
    "CERTIFICATE_REVOKED": (_S.PERMISSION_DENIED,
                            "the certificate is revoked or the revocation list cannot vouch"),
    "AGENCY_MISMATCH": (_S.PERMISSION_DENIED, "the token's agency is not the client certificate's"),
    "AGENCY_NOT_REGISTERED": (_S.PERMISSION_DENIED,
                              "the agent's agency is not registered with this broker"),
    # RESOURCE_EXHAUSTED, with a RetryInfo
    "RATE_LIMITED": (_S.RESOURCE_EXHAUSTED, "the analyst's lookup rate limit is reached"),
    # UNAVAILABLE, with a RetryInfo (another broker may take it)
    "AUDIT_UNAVAILABLE": (_S.UNAVAILABLE, "the audit trail cannot be written, so nothing is asked"),
    "RATE_LIMIT_UNAVAILABLE": (_S.UNAVAILABLE, "the shared rate limits cannot be checked"),
    # DEADLINE_EXCEEDED / CANCELLED on a stream
    "STEP_TIMED_OUT": (_S.DEADLINE_EXCEEDED, "a stream's next message did not arrive in time"),
    "STREAM_CLOSED": (_S.CANCELLED, "the client closed the stream before its next step"),
}
# How long a client waits before trying an UNAVAILABLE lookup again, on any broker.
UNAVAILABLE_RETRY_SECONDS = 0.1


@dataclass(frozen=True)
class Violation:
    """One invalid field: its path in the request and the rule, without the value given."""

    field: str
    description: str


@dataclass(frozen=True)
class ErrorDetails:
    """What a client reads from a refusal's `google.rpc.Status` (empty when it has none)."""

    reason: str = ""
    domain: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    violations: tuple[Violation, ...] = ()
    retry_delay: float | None = None  # seconds


def rich_status(code: grpc.StatusCode, message: str, *, reason: str,
                violations: Sequence[Violation] = (), retry_after: float | None = None,
                metadata: Mapping[str, str] | None = None) -> status_pb2.Status:
    """The google.rpc.Status for a refusal: code, message, ErrorInfo and the rest."""
    if reason not in REASONS:
        raise ValueError(f"unknown error reason {reason!r}: add it to REASONS")
    details: list[Any] = [error_details_pb2.ErrorInfo(
        reason=reason, domain=DOMAIN, metadata=dict(metadata or {}))]
    if violations:
        details.append(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in violations]))
    if retry_after is not None:
        seconds = max(retry_after, 0.0)
        whole = math.floor(seconds)
        details.append(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(
            seconds=whole, nanos=int((seconds - whole) * 1e9))))
    packed = []
    for detail in details:
        item = any_pb2.Any()
        item.Pack(detail)
        packed.append(item)
    return status_pb2.Status(code=code.value[0], message=message, details=packed)


async def abort(context: grpc.aio.ServicerContext[Any, Any], code: grpc.StatusCode,
                message: str, *, reason: str, violations: Sequence[Violation] = (),
                retry_after: float | None = None,
                metadata: Mapping[str, str] | None = None) -> NoReturn:
    """End the call with `code` and `message`, and the details beside them."""
    status = rich_status(code, message, reason=reason, violations=violations,
                         retry_after=retry_after, metadata=metadata)
    await context.abort_with_status(rpc_status.to_status(status))
    raise AssertionError("unreachable: abort_with_status raises")  # pragma: no cover


async def abort_invalid(context: grpc.aio.ServicerContext[Any, Any], message: str, *,
                        reason: str, field_path: str, rule: str = "") -> NoReturn:
    """INVALID_ARGUMENT for one field: `rule` (default: the message with any quoted value
    taken out) is the BadRequest's description."""
    await abort(context, grpc.StatusCode.INVALID_ARGUMENT, message, reason=reason,
                violations=[Violation(field_path, rule or redact(message))])


def details_of(call: Any) -> ErrorDetails:
    """The details of a failed call (a grpc.RpcError that is a grpc.Call, sync or aio);
    empty when there are none or they do not agree with the call's status (fail closed)."""
    try:
        status = rpc_status.from_call(call)
    except (ValueError, AttributeError, TypeError):
        return ErrorDetails()
    if status is None:
        return ErrorDetails()
    return parse_status(status)


def parse_status(status: status_pb2.Status) -> ErrorDetails:
    reason, domain, metadata = "", "", {}
    violations: list[Violation] = []
    retry: float | None = None
    for item in status.details:
        if item.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            item.Unpack(info)
            reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif item.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            item.Unpack(bad)
            violations.extend(Violation(v.field, v.description) for v in bad.field_violations)
        elif item.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info_r = error_details_pb2.RetryInfo()
            item.Unpack(info_r)
            retry = info_r.retry_delay.seconds + info_r.retry_delay.nanos / 1e9
    return ErrorDetails(reason=reason, domain=domain, metadata=metadata,
                        violations=tuple(violations), retry_delay=retry)


# --- every invalid field of a lookup at once ------------------------------------------------

# A date or a quoted value (repr) in a message: taken out of a violation's description.
_VALUE = re.compile(r" -?\d{1,4}-\d{1,2}-\d{1,2}\b| '(?:[^'\\]|\\.)*'| \"(?:[^\"\\]|\\.)*\"")


def redact(message: str) -> str:
    """The message without the values it quotes: a violation names the field and the rule."""
    return " ".join(_VALUE.sub("", message).split())


def _violations(exc: ValidationError) -> list[Violation]:
    return [Violation(p.field or "subject", redact(p.message)) for p in exc.problems]


def subject_violations(msg: subject_pb2.Subject) -> list[Violation]:
    """Every invalid field of a subject (mash.subject.from_proto finds them all)."""
    try:
        subject_mod.from_proto(msg)
    except ValidationError as exc:
        return _violations(exc)
    return []


def context_violations(msg: subject_pb2.RequestContext) -> list[Violation]:
    """Every invalid field of a request context."""
    try:
        context_mod.from_proto(msg)
    except ValidationError as exc:
        return _violations(exc)
    return []


def _reason_for(violations: Sequence[Violation]) -> str:
    if any(v.field.startswith("subject") for v in violations):
        return "INVALID_SUBJECT"
    if any(v.field.startswith("query.") and not v.field.startswith("query.context")
           for v in violations):
        return "INVALID_BLIND_QUERY"
    return "INVALID_CONTEXT"  # the context's fields (and perhaps the agency filter)


_BLIND_FIELDS = (("answer_key", "query.answer_key"), ("nonce", "query.nonce"),
                 ("match token", "query.match_tokens"), ("evidence", "query.evidence"))


def blind_violations(check: Callable[[], object]) -> list[Violation]:
    """The blind query's envelope problem (mash.broker.blind.check_query), if any."""
    try:
        check()
    except ValidationError as exc:
        message = str(exc)
        path = next((p for word, p in _BLIND_FIELDS if word in message), "query")
        return [Violation(path, redact(message))]
    return []


async def abort_invalid_lookup(context: grpc.aio.ServicerContext[Any, Any], first: str, *,
                               subject: subject_pb2.Subject | None,
                               request_context: subject_pb2.RequestContext,
                               blind_check: Callable[[], object] | None = None,
                               extra: Sequence[Violation] = (),
                               ) -> NoReturn:
    """INVALID_ARGUMENT naming every invalid field of the subject and the context, or of a
    blind query (the broker cannot read its subject: its paths are under `query.`). The
    message is the first problem's, as the validation raised it (`first`), then the others'.
    `extra`: what the caller found besides (the routing policy's), for fields not named yet."""
    violations = (subject_violations(subject) if subject is not None else [])
    if blind_check is None:
        violations += context_violations(request_context)
    else:
        violations += [Violation(f"query.{v.field}", v.description)
                       for v in context_violations(request_context)]
        violations += blind_violations(blind_check)
    named = {v.field for v in violations}
    violations += [v for v in extra if v.field not in named]
    if not violations:  # fail closed: still refused, on the whole request
        violations = [Violation("subject" if subject is not None else "query",
                                redact(first))]
    messages = [first]
    for v in violations:
        if v.description not in (redact(m) for m in messages):
            messages.append(v.description)
    await abort(context, grpc.StatusCode.INVALID_ARGUMENT, "; ".join(messages),
                reason=_reason_for(violations), violations=violations)
