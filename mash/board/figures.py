"""What the board report counts, from the broker's "lookup" and "answers" audit entries.

- lookups: the "lookup" entries recorded in [since, until), by purpose, stage and urgency.
- answered within the RAG deadline: a lookup whose answer set was recorded within the hours
  its urgency allows (red 4, amber 24, green 72 by default) and in which every agency with an
  agreement answered (KNOWN, NOT KNOWN, WITHHELD, or sealed in a blind lookup). An agency NOT
  CHECKED for any reason but "no agreement" makes the lookup not answered: not checked is never
  counted as an answer. A lookup with no answer set at all (the broker stopped) is not answered.
- per agency, from the "answers" entries in [since, until): answer states, NOT_CHECKED reasons,
  and per period availability (the share of lookups its agent could be reached for: not NOT
  CHECKED as offline, disconnected, not answering, timed out, agent error or data unavailable)
  and completeness (the share it actually checked); the median answer time of the answers its
  agent gave (recorded since entries carry `answer_ms`).

Nothing here reads a requester, a case reference, a justification or a subject hash: the
report holds counts only, suppressed below 5 (mash.board.suppress).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mash.audit.chain import EntryRow, format_time, row_fault
from mash.audit.store import AuditStore, Filter
from mash.board import suppress
from mash.context import DEFAULT_RAG_HOURS
from mash.errors import ValidationError

PERIODS = ("day", "week", "month")
# NOT_CHECKED reasons that say the agency could not be reached or could not answer at all.
AVAILABILITY_REASONS = frozenset({
    "agent_offline", "agent_disconnected", "agent_unresponsive", "timed_out", "agent_error",
    "data_unavailable", "not_relayed",
})
NOT_EXPECTED = frozenset({"no_agreement"})  # nobody expects an answer without an agreement
MAX_DAYS = 732
READ_STEP = dt.timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """What the report covers. `agencies`: id -> name of every registered agency (so an
    agency asked nothing still appears, with zeros)."""

    since: dt.datetime
    until: dt.datetime
    rag_hours: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RAG_HOURS))
    period: str = "day"
    agencies: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.until <= self.since:
            raise ValidationError("--until must be after --since")
        if (self.until - self.since).days > MAX_DAYS:
            raise ValidationError(f"a report covers at most {MAX_DAYS} days")
        if self.period not in PERIODS:
            raise ValidationError(f"period {self.period!r} is not one of {', '.join(PERIODS)}")
        missing = {"red", "amber", "green"} - set(self.rag_hours)
        if missing:
            raise ValidationError(f"rag hours missing for {', '.join(sorted(missing))}")


def _moment(text: str) -> dt.datetime:
    """Stored time text (TIME_FORMAT) -> an aware datetime (fromisoformat: fast)."""
    return dt.datetime.fromisoformat(text.removesuffix("Z") + "+00:00")


def period_of(moment: dt.datetime, period: str) -> str:
    if period == "week":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{moment:%Y-%m}"
    return f"{moment:%Y-%m-%d}"


@dataclass
class _Agency:
    states: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    times: list[int] = field(default_factory=list)
    periods: dict[str, _Period] = field(default_factory=dict)


@dataclass
class _Period:
    asked: int = 0
    answered: int = 0
    unavailable: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class _Outcome:
    agency: str
    state: str
    reason: str
    answer_ms: int | None


@dataclass(frozen=True, slots=True)
class _Entry:
    """What the report reads of an entry (not the whole AuditEntry: requester, case and
    subject are never even parsed into it)."""

    at: str
    lookup_id: str
    purpose: str
    stage: str
    urgency: str
    outcomes: tuple[_Outcome, ...]


@dataclass
class _Read:
    lookups: list[_Entry] = field(default_factory=list)
    answers: dict[str, _Entry] = field(default_factory=dict)
    not_intact: int = 0
    purged: int = 0


def _ms(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _parse(row: EntryRow, body: str) -> tuple[str, _Entry]:
    data = json.loads(body)
    outcomes = tuple(_Outcome(str(o["agency"]), str(o["state"]), str(o.get("reason") or ""),
                              _ms(o.get("answer_ms"))) for o in data.get("outcomes") or ())
    return str(data["event"]), _Entry(
        row.recorded_at, str(data.get("lookup_id") or ""), str(data.get("purpose") or ""),
        str(data.get("stage") or ""), str(data.get("urgency") or ""), outcomes)


def _read(rows: Iterable[EntryRow], read: _Read, *, lookups_until: str) -> None:
    for row in rows:
        if row.body is None:
            read.purged += 1
            continue
        if row_fault(row) is not None:
            read.not_intact += 1  # `mash audit verify` names it; the report leaves it out
            continue
        try:
            event, entry = _parse(row, row.body)
        except (ValueError, TypeError, KeyError, AttributeError):
            read.not_intact += 1
            continue
        if event == "lookup" and row.recorded_at < lookups_until:
            read.lookups.append(entry)
        elif event == "answers" and entry.lookup_id:
            read.answers.setdefault(entry.lookup_id, entry)


def answered(entry: _Entry) -> bool:
    """Every agency that could be expected to answer did (sealed answers count)."""
    return all(o.state != "NOT_CHECKED" or o.reason in NOT_EXPECTED for o in entry.outcomes)


def compute(store: AuditStore, window: Window) -> dict[str, Any]:
    """The report as a JSON-able dict, already suppressed."""
    since, until = format_time(window.since), format_time(window.until)
    latest = window.until + dt.timedelta(hours=max(window.rag_hours.values()))
    read = _Read()
    start = window.since
    while start < latest:  # a day of rows at a time: only the parsed counts stay in memory
        end = min(start + READ_STEP, latest)
        _read(store.find(Filter(since=format_time(start), until=format_time(end))), read,
              lookups_until=until)
        start = end
    lookups = _lookups(read, window)
    agencies = _agencies(read, window, since, until)
    return {
        "report": "mash board report",
        "generated_at": format_time(),
        "since": since, "until": until, "period": window.period,
        "rag_hours": dict(window.rag_hours),
        "suppression": {"threshold": suppress.THRESHOLD, "shown_as": suppress.HIDDEN,
                        "note": suppress.NOTE},
        **lookups,
        "agencies": agencies,
        "entries_left_out": {"not_intact": suppress.count(read.not_intact),
                             "purged": suppress.count(read.purged)},
    }


def _lookups(read: _Read, window: Window) -> dict[str, Any]:
    purposes: Counter[str] = Counter()
    stages: dict[str, Counter[str]] = defaultdict(Counter)
    urgencies: Counter[str] = Counter()
    due: Counter[str] = Counter()
    within: Counter[str] = Counter()
    for entry in read.lookups:
        purposes[entry.purpose or "unknown"] += 1
        stages[entry.purpose or "unknown"][entry.stage or "unknown"] += 1
        urgency = entry.urgency if entry.urgency in window.rag_hours else "unknown"
        urgencies[urgency] += 1
        due[urgency] += 1
        found = read.answers.get(entry.lookup_id)
        if found is None or urgency == "unknown":
            continue
        taken = _moment(found.at) - _moment(entry.at)
        if taken <= dt.timedelta(hours=window.rag_hours[urgency]) and answered(found):
            within[urgency] += 1
    total = len(read.lookups)
    return {
        "lookups": {"total": suppress.count(total), "by_purpose": suppress.group(purposes),
                    "by_stage": {p: suppress.group(s) for p, s in sorted(stages.items())},
                    "by_urgency": suppress.group(urgencies)},
        "answered_within_deadline_share": suppress.share(sum(within.values()), total),
        "answered_within_deadline": {
            u: {"lookups": suppress.count(due[u]), "within": suppress.count(within[u]),
                "share": suppress.share(within[u], due[u])} for u in sorted(due)},
    }


def _agencies(read: _Read, window: Window, since: str, until: str) -> dict[str, Any]:
    tallies: dict[str, _Agency] = {a: _Agency() for a in window.agencies}
    for entry in read.answers.values():
        if not since <= entry.at < until:
            continue
        period = period_of(_moment(entry.at), window.period)
        for o in entry.outcomes:
            tally = tallies.setdefault(o.agency, _Agency())
            tally.states[o.state] += 1
            slot = tally.periods.setdefault(period, _Period())
            slot.asked += 1
            if o.state == "NOT_CHECKED":
                reason = o.reason or "unspecified"
                tally.reasons[reason] += 1
                slot.reasons[reason] += 1
                slot.unavailable += reason in AVAILABILITY_REASONS
            else:
                slot.answered += 1
                if o.answer_ms is not None:
                    tally.times.append(o.answer_ms)
    return {agency: _agency_figures(agency, tally, window)
            for agency, tally in sorted(tallies.items())}


def _agency_figures(agency: str, tally: _Agency, window: Window) -> dict[str, Any]:
    asked = sum(tally.states.values())
    answered_ = sum(n for s, n in tally.states.items() if s != "NOT_CHECKED")
    unavailable = sum(n for r, n in tally.reasons.items() if r in AVAILABILITY_REASONS)
    states = {s: tally.states.get(s, 0) for s in ("KNOWN", "NOT_KNOWN", "WITHHELD",
                                                  "NOT_CHECKED")}
    states.update({s: n for s, n in tally.states.items() if s not in states})
    median = (int(statistics.median(tally.times))
              if len(tally.times) >= suppress.THRESHOLD else None)
    return {
        "name": window.agencies.get(agency, agency),
        "asked": suppress.count(asked),
        "states": suppress.group(states),
        "not_checked_reasons": suppress.group(tally.reasons),
        "availability": suppress.share(asked - unavailable, asked),
        "completeness": suppress.share(answered_, asked),
        "median_answer_ms": median,
        "answer_times_recorded": suppress.count(len(tally.times)),
        "over_time": [{
            "period": period, "asked": suppress.count(slot.asked),
            "answered": suppress.count(slot.answered),
            "availability": suppress.share(slot.asked - slot.unavailable, slot.asked),
            "completeness": suppress.share(slot.answered, slot.asked),
            "not_checked_reasons": suppress.group(slot.reasons),
        } for period, slot in sorted(tally.periods.items())],
    }
