"""What the templates show: answers, agents and RAG timers as plain data.

Every answer state has a text label, a symbol and a colour, so that no state is told by colour
alone; NOT_CHECKED carries its reason and says in words that it is not "not known".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from mash.answers import (
    CONFIDENCE_LABELS,
    NOT_CHECKED_LABELS,
    STATE_LABELS,
    STATE_TEXT,
    from_timestamp,
)
from mash.v1 import answer_pb2, lookup_pb2

R = answer_pb2
# What the console adds to mash.answers' state table: a symbol and a sentence per state.
SYMBOLS = {
    R.ANSWER_STATE_KNOWN: ("●", "The agency holds information about this person."),
    R.ANSWER_STATE_NOT_KNOWN: ("○", "Searched: nothing found."),
    R.ANSWER_STATE_WITHHELD: ("◆",
                              "The agency holds something it may not share here: contact it."),
    R.ANSWER_STATE_NOT_CHECKED: ("⚠", "NOT searched. This is not the same as not known: "
                                      "treat this agency as unknown."),
}
# (css class / test hook, label, symbol, explanation) by state: known, not-known, ...
STATES = {state: (STATE_LABELS[state].lower().replace("_", "-"), STATE_TEXT[state], *shown)
          for state, shown in SYMBOLS.items()}


def when(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "unknown"


def iso(value: dt.datetime | None) -> str:
    return value.isoformat() if value else ""


@dataclass
class AnswerView:
    agency_id: str
    agency_name: str
    key: str  # css class / test hook: known, not-known, withheld, not-checked
    label: str
    symbol: str
    explanation: str
    reason: str = ""
    detail: str = ""
    matches: list[dict[str, Any]] = field(default_factory=list)
    searched: dict[str, Any] | None = None
    contact_route: str = ""
    data_as_at: str = ""
    agreement_id: str = ""
    policy_revision: str = ""
    warnings: list[str] = field(default_factory=list)
    elapsed_ms: int = 0


def answer_view(answer: answer_pb2.AgencyAnswer) -> AnswerView:
    key, label, symbol, explanation = STATES.get(
        answer.state, ("not-checked", "NOT CHECKED", "⚠", "No valid answer: treat as unknown."))
    view = AnswerView(
        agency_id=answer.agency_id, agency_name=answer.agency_name or answer.agency_id,
        key=key, label=label, symbol=symbol, explanation=explanation, detail=answer.detail,
        contact_route=answer.contact_route,
        data_as_at=when(from_timestamp(answer.data_as_at)) if answer.HasField("data_as_at")
        else "", agreement_id=answer.agreement_id, policy_revision=answer.policy_revision,
        warnings=list(answer.warnings), elapsed_ms=answer.elapsed_ms)
    if answer.state == R.ANSWER_STATE_NOT_CHECKED:
        view.reason = NOT_CHECKED_LABELS.get(answer.not_checked_reason, "no reason given")
        view.contact_route = ""
    for match in answer.matches:
        view.matches.append({
            "confidence": CONFIDENCE_LABELS.get(match.confidence, "unknown"),
            "score": f"{match.score:.1f}" if match.score else "",
            "matched_on": list(match.matched_on),
            "source": match.source,
            "agreement_id": match.agreement_id,
            "released": [{"name": f.name, "value": f.value, "transform": f.transform}
                         for f in match.released],
            "withheld": _by_reason(match.withheld),
        })
    if answer.state == R.ANSWER_STATE_NOT_KNOWN:
        s = answer.searched
        view.searched = {
            "identifiers": list(s.identifiers_used),
            "names": list(s.name_variants),
            # the rules the agent applied, in its words, as `mash lookup` shows them; an
            # agent that does not send them is described by its tolerance and swap flag
            "dob_rules": list(s.date_of_birth_rules) or [_tolerance(s)],
            "postcodes": list(s.postcodes),
            "addresses": list(s.addresses),
            "sources": [{"name": src.name, "records": src.record_count,
                         "as_at": when(from_timestamp(src.as_at))} for src in s.sources],
        }
    return view


def _tolerance(searched: answer_pb2.SearchSummary) -> str:
    text = f"within {searched.date_of_birth_tolerance_days} days"
    if searched.date_of_birth_tolerance_days == 0:
        text = "exact"
    if searched.date_of_birth_day_month_swap:
        text += ", and day and month swapped"
    return text


def _by_reason(withheld: Any) -> list[dict[str, Any]]:
    """Withheld fields grouped by the reason given, in first-seen order."""
    groups: dict[str, list[str]] = {}
    for f in withheld:
        groups.setdefault(f.reason or "no reason given", []).append(f.name)
    return [{"reason": reason, "names": names} for reason, names in groups.items()]


@dataclass(frozen=True)
class RagTimer:
    urgency: str
    asked_at: dt.datetime
    due_at: dt.datetime

    def remaining(self, now: dt.datetime | None = None) -> dt.timedelta:
        return self.due_at - (now or dt.datetime.now(dt.UTC))

    def remaining_text(self, now: dt.datetime | None = None) -> str:
        left = self.remaining(now)
        if left.total_seconds() <= 0:
            return f"OVERDUE by {_span(-left)}"
        return f"{_span(left)} left"

    @property
    def due_text(self) -> str:
        return when(self.due_at)

    @property
    def due_iso(self) -> str:
        return iso(self.due_at)


def _span(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    return f"{hours}h {minutes}m"


def rag_timer(urgency: str, asked_at: dt.datetime, rag_hours: dict[str, float]) -> RagTimer:
    return RagTimer(urgency, asked_at, asked_at + dt.timedelta(hours=rag_hours[urgency]))


# The order answers are grouped in: what the analyst must act on first (KNOWN, then NOT
# CHECKED, which must be chased), then WITHHELD (contact the agency), then NOT KNOWN.
GROUP_ORDER = ("known", "not-checked", "withheld", "not-known")


@dataclass
class AnswerGroup:
    key: str
    label: str
    symbol: str
    answers: list[AnswerView]

    @property
    def agencies(self) -> str:
        return ", ".join(a.agency_name for a in self.answers)


@dataclass
class LookupView:
    lookup_id: str
    asked_at: str
    requester: str
    routing_revision: str
    answers: list[AnswerView]
    counts: dict[str, int]
    not_checked: int
    groups: list[AnswerGroup] = field(default_factory=list)


def lookup_view(response: lookup_pb2.LookupResponse) -> LookupView:
    answers = [answer_view(a) for a in response.answers]
    counts: dict[str, int] = {}
    for a in answers:
        counts[a.label] = counts.get(a.label, 0) + 1
    groups = []
    for key in GROUP_ORDER:
        members = sorted((a for a in answers if a.key == key), key=lambda a: a.agency_name)
        if members:
            groups.append(AnswerGroup(key, members[0].label, members[0].symbol, members))
    return LookupView(
        lookup_id=response.lookup_id, asked_at=when(from_timestamp(response.asked_at)),
        requester=f"{response.requester} ({response.requester_agency})",
        routing_revision=response.routing_revision, answers=answers, counts=counts,
        not_checked=sum(1 for a in answers if a.key == "not-checked"), groups=groups)


def summary(view: LookupView) -> str:
    """'1 KNOWN, 2 NOT CHECKED, ...' in the groups' order (no agency or person named: it
    is kept in the session)."""
    return ", ".join(f"{len(g.answers)} {g.label}" for g in view.groups)


def agents_view(response: lookup_pb2.ListAgentsResponse) -> list[dict[str, Any]]:
    out = []
    for a in response.agents:
        out.append({
            "agency_id": a.agency_id, "name": a.agency_name or a.agency_id, "online": a.online,
            "ready": a.ready, "records": a.record_count,
            # why the agent's latest load of its records was refused ("" if it was not), and
            # whether it answers from an older load meanwhile
            "data_problem": a.data_status.refused_problem, "stale": a.data_status.stale,
            # connected but not answering (the broker answers NOT_CHECKED at once for it)
            "unresponsive": a.unresponsive, "unresponsive_reason": a.unresponsive_reason,
            "unresponsive_since": when(from_timestamp(a.unresponsive_since))
            if a.HasField("unresponsive_since") else "unknown",
            "data_as_at": when(from_timestamp(a.data_as_at)) if a.HasField("data_as_at")
            else "unknown",
            "last_seen": when(from_timestamp(a.last_seen)) if a.HasField("last_seen")
            else "never",
            "policy_revision": a.policy_revision or "none loaded",
            "version": a.agent_version or "-",
        })
    return out
