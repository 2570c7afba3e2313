"""Building agency answers: every answer is in exactly one state."""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp

from mash.v1 import answer_pb2

NOT_CHECKED_LABELS = {
    answer_pb2.NOT_CHECKED_REASON_NO_AGREEMENT: "no agreement",
    answer_pb2.NOT_CHECKED_REASON_AGENT_OFFLINE: "agent offline",
    answer_pb2.NOT_CHECKED_REASON_TIMED_OUT: "timed out",
    answer_pb2.NOT_CHECKED_REASON_POLICY_ERROR: "policy error",
    answer_pb2.NOT_CHECKED_REASON_TOO_FEW_IDENTIFIERS: "too few identifiers",
    answer_pb2.NOT_CHECKED_REASON_AGENT_ERROR: "agent error",
    answer_pb2.NOT_CHECKED_REASON_TOKEN_REJECTED: "token rejected",
    answer_pb2.NOT_CHECKED_REASON_AUDIT_FAILED: "audit failed",
    answer_pb2.NOT_CHECKED_REASON_DATA_UNAVAILABLE: "data unavailable",
    answer_pb2.NOT_CHECKED_REASON_AGENT_DISCONNECTED: "agent disconnected",
    answer_pb2.NOT_CHECKED_REASON_APPROVAL_REQUIRED: "approval required",
    answer_pb2.NOT_CHECKED_REASON_NOT_RELAYED: "no answer relayed",
    answer_pb2.NOT_CHECKED_REASON_AGENT_UNRESPONSIVE: "agent not answering",
    answer_pb2.NOT_CHECKED_REASON_VERIFICATION_FAILED: "answer failed verification",
}
# The one table of answer states: the code (audit entries, JSON, metrics) ...
STATE_LABELS = {
    answer_pb2.ANSWER_STATE_KNOWN: "KNOWN",
    answer_pb2.ANSWER_STATE_NOT_KNOWN: "NOT_KNOWN",
    answer_pb2.ANSWER_STATE_WITHHELD: "WITHHELD",
    answer_pb2.ANSWER_STATE_NOT_CHECKED: "NOT_CHECKED",
}
# ... and as people read it (the CLI's table, the console): "NOT CHECKED".
STATE_TEXT = {state: label.replace("_", " ") for state, label in STATE_LABELS.items()}
CONFIDENCE_LABELS = {
    answer_pb2.CONFIDENCE_MATCH: "match",
    answer_pb2.CONFIDENCE_POSSIBLE: "possible",
}


def timestamp(value: dt.datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(dt.UTC))
    return ts


def from_timestamp(ts: Timestamp) -> dt.datetime | None:
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime(dt.UTC)


def not_checked(agency_id: str, reason: int, detail: str, agency_name: str = "",
                **extra: object) -> answer_pb2.AgencyAnswer:
    assert reason in NOT_CHECKED_LABELS, "every NOT_CHECKED answer needs a reason"
    return answer_pb2.AgencyAnswer(
        agency_id=agency_id,
        agency_name=agency_name,
        state=answer_pb2.ANSWER_STATE_NOT_CHECKED,
        not_checked_reason=reason,  # type: ignore[arg-type]
        detail=detail,
        **extra,  # type: ignore[arg-type]
    )


def problem(answer: answer_pb2.AgencyAnswer) -> str | None:
    """Why an answer is not well formed, or None. The broker never forwards a malformed one."""
    state = answer.state
    if state not in STATE_LABELS:
        return "the answer has no state"
    if state == answer_pb2.ANSWER_STATE_NOT_CHECKED:
        if answer.not_checked_reason not in NOT_CHECKED_LABELS:
            return "a NOT_CHECKED answer carries no reason"
        if answer.matches:
            return "a NOT_CHECKED answer carries matches"
        return None
    if answer.not_checked_reason != answer_pb2.NOT_CHECKED_REASON_UNSPECIFIED:
        return "only NOT_CHECKED answers carry a not-checked reason"
    if state == answer_pb2.ANSWER_STATE_KNOWN and not answer.matches:
        return "a KNOWN answer carries no matches"
    if state in (answer_pb2.ANSWER_STATE_NOT_KNOWN, answer_pb2.ANSWER_STATE_WITHHELD) \
            and answer.matches:
        return f"a {STATE_LABELS[state]} answer carries matches"
    if not answer.HasField("data_as_at"):
        return "the answer does not say how current its data is"
    return None
