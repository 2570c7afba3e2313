"""Building entries from what the broker and the agent already hold.

Broker (mash/broker/lookup.py), once per lookup:

    subject = subject_mod.from_proto(request.subject)
    hashes = hasher.hashes(subject)
    await audit.append_async(lookup_entry(
        lookup_id=lookup_id, analyst=analyst, context=ctx, subject=hashes,
        asked=[agency ids it will query], policy_revision=self.routing.revision,
        agreements=[d.agreement_id for d in decisions if d.allowed]))
    ... fan out, gather answers ...
    await audit.append_async(answers_entry(
        lookup_id=lookup_id, analyst=analyst, context=ctx, subject=hashes,
        answers=answers, policy_revision=self.routing.revision))
    return response
    # AuditError from either append: abort the RPC (UNAVAILABLE, "the audit trail cannot be
    # written") and return nothing; appends are blocking I/O, hence append_async.

Agent (mash/agent/handler.py), once per query, after the answer is built and before it leaves:

    refs = [hasher.record_ref(c.record.source, c.record.record_id) for c in matched_candidates]
    audit.append(query_entry(lookup_id=query.lookup_id, query_id=query.query_id,
                             analyst=analyst, context=ctx, subject=hasher.hashes(subject),
                             answer=answer, record_refs=refs))
    # AuditError: replace the answer by NOT_CHECKED (NOT_CHECKED_REASON_AUDIT_FAILED), which
    # releases nothing. QueryHandler.record() writes it after the decision, so every path
    # (refusals, NOT_KNOWN, errors) is recorded; the decision must hand back the analyst,
    # context, subject and matched candidates it found for that (its Trace).

`analyst` and `context` may be None when the token or the request was refused: the entry then
records what is known (the refusal is in the outcome).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mash.answers import STATE_LABELS
from mash.audit.entry import AuditEntry, Outcome, Released
from mash.context import LookupContext
from mash.identity.tokens import Analyst
from mash.v1 import answer_pb2

_REASON_PREFIX = "NOT_CHECKED_REASON_"


def outcome_from_answer(answer: answer_pb2.AgencyAnswer,
                        record_refs: Iterable[str] = (), state: str = "",
                        answer_ms: int | None = None) -> Outcome:
    """What an answer released, without the released values.

    `state` overrides the answer's own for what only blind lookups have: CANDIDATE (an agent's
    first round found a token hit) and SEALED (the broker relayed an answer it cannot read).
    """
    reason = ""
    if answer.not_checked_reason:
        reason = answer_pb2.NotCheckedReason.Name(answer.not_checked_reason)
        reason = reason.removeprefix(_REASON_PREFIX).lower()
    state = state or STATE_LABELS.get(answer.state) or ""
    if not state:  # a malformed answer released nothing the analyst may rely on
        state, reason = "NOT_CHECKED", reason or "unspecified_state"
    released = sorted({(f.name, f.transform) for m in answer.matches for f in m.released})
    withheld = sorted({f.name for m in answer.matches for f in m.withheld})
    return Outcome(agency=answer.agency_id, state=state, reason=reason,
                   agreement_id=answer.agreement_id, policy_revision=answer.policy_revision,
                   matches=len(answer.matches),
                   released=tuple(Released(n, t) for n, t in released),
                   withheld=tuple(withheld), record_refs=tuple(sorted(set(record_refs))),
                   answer_ms=answer_ms)


def _who(analyst: Analyst | None, context: LookupContext | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if analyst is not None:
        out.update(requester=analyst.subject, requester_agency=analyst.agency,
                   role=analyst.role, team=analyst.team)
    if context is not None:
        out.update(purpose=context.purpose, stage=context.stage,
                   case_reference=context.case_reference, justification=context.justification,
                   urgency=context.urgency)
    return out


def _match_agreements(answers: Iterable[answer_pb2.AgencyAnswer]) -> tuple[str, ...]:
    return tuple(sorted({m.agreement_id for a in answers for m in a.matches if m.agreement_id}))


def lookup_entry(*, lookup_id: str, analyst: Analyst | None, context: LookupContext | None,
                 subject: Iterable[str], asked: Iterable[str], policy_revision: str = "",
                 agreements: Iterable[str] = (), detail: str = "",
                 attempt: int = 1) -> AuditEntry:
    """The broker, before fan-out; attempt > 1: a client's retry of the same lookup."""
    if attempt > 1:
        detail = "; ".join(d for d in (f"attempt {attempt}", detail) if d)
    return AuditEntry(event="retry" if attempt > 1 else "lookup", lookup_id=lookup_id,
                      subject=tuple(subject), asked=tuple(sorted(asked)),
                      policy_revision=policy_revision,
                      agreements=tuple(sorted({a for a in agreements if a})), detail=detail,
                      **_who(analyst, context))


def refused_entry(*, lookup_id: str, analyst: Analyst | None, context: LookupContext | None,
                  subject: Iterable[str], detail: str) -> AuditEntry:
    """The broker, a lookup it refused before asking anyone (`detail` says why)."""
    return AuditEntry(event="refused", lookup_id=lookup_id, subject=tuple(subject),
                      detail=detail, **_who(analyst, context))


def answers_entry(*, lookup_id: str, analyst: Analyst | None, context: LookupContext | None,
                  subject: Iterable[str], answers: Iterable[answer_pb2.AgencyAnswer],
                  policy_revision: str = "", detail: str = "",
                  answer_ms: Mapping[str, int] | None = None,
                  elapsed_ms: int | None = None) -> AuditEntry:
    """The broker, before the answer set returns. `answer_ms`: per agency asked, the ms from
    fan-out to its answer; `elapsed_ms`: from the lookup's arrival to the answer set."""
    answers = list(answers)
    times = answer_ms or {}
    return AuditEntry(event="answers", lookup_id=lookup_id, subject=tuple(subject),
                      policy_revision=policy_revision, agreements=_match_agreements(answers),
                      outcomes=tuple(outcome_from_answer(a, answer_ms=times.get(a.agency_id))
                                     for a in answers),
                      detail=detail, elapsed_ms=elapsed_ms, **_who(analyst, context))


def query_entry(*, lookup_id: str, query_id: str, analyst: Analyst | None,
                context: LookupContext | None, subject: Iterable[str],
                answer: answer_pb2.AgencyAnswer, record_refs: Iterable[str] = (),
                detail: str = "", state: str = "") -> AuditEntry:
    """An agent, before its answer leaves."""
    return AuditEntry(event="query", lookup_id=lookup_id, query_id=query_id,
                      subject=tuple(subject), policy_revision=answer.policy_revision,
                      agreements=_match_agreements([answer]),
                      outcomes=(outcome_from_answer(answer, record_refs, state),), detail=detail,
                      **_who(analyst, context))


def sealed_answers_entry(*, lookup_id: str, analyst: Analyst | None,
                         context: LookupContext | None, sealed: Iterable[str],
                         answers: Iterable[answer_pb2.AgencyAnswer], policy_revision: str = "",
                         detail: str = "") -> AuditEntry:
    """The broker, before a blind round's answers return: it records which agencies answered
    (sealed, unreadable to it) and the NOT_CHECKED answers it gave itself."""
    outcomes = [Outcome(agency=a, state="SEALED") for a in sealed]
    outcomes += [outcome_from_answer(a) for a in answers]
    return AuditEntry(event="answers", lookup_id=lookup_id, policy_revision=policy_revision,
                      outcomes=tuple(sorted(outcomes, key=lambda o: o.agency)), detail=detail,
                      **_who(analyst, context))
