"""What one audit entry records, and its canonical serialisation.

An entry says who asked (requester, agency, role, team), why (purpose, stage, case reference,
justification, urgency), about whom (keyed hashes only, from `SubjectHasher`), under which
agreement(s) and policy revision, and what came back (one `Outcome` per agency: answer state,
fields released with their transform, fields withheld). It never holds a name, a date of birth
or an identifier: `subject` and `record_refs` accept only 32-hex keyed hashes, so passing a raw
NHS number fails closed with `AuditError`.

Events:
- "lookup": the broker, before it fans a lookup out (`asked` = agencies queried).
- "retry": a broker, before it fans out again a lookup the client retried after another
  broker answered UNAVAILABLE (same lookup id; `detail` says which attempt). Not a new lookup.
- "refused": the broker, a lookup it refused before asking anyone, e.g. a request proof that
  does not verify (`detail` says why; nobody was asked, nothing answered).
- "answers": the broker, before it returns the answer set (one outcome per agency).
- "query": an agent, before its answer leaves (one outcome: its own, with `record_refs` for the
  records that matched). A "query" whose outcome is KNOWN or WITHHELD also notifies the owner.
- "purge": the retention command, recording what it deleted.
- "reopen": the console, before it shows a stored case again (mash/cases/store.py).

`canonical()` is JSON with sorted keys and no spaces: the bytes that are hashed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from typing import Any

from mash.audit.errors import AuditError

EVENTS = ("lookup", "retry", "refused", "answers", "query", "purge", "reopen")
STATES = ("KNOWN", "NOT_KNOWN", "WITHHELD", "NOT_CHECKED", "CANDIDATE", "SEALED")
MATCHED_STATES = frozenset({"KNOWN", "WITHHELD"})
_HASH = re.compile(r"^[0-9a-f]{32}$")
MAX_TEXT = 4000


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _text(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise AuditError(f"audit entry: {owner}.{name} must be text, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise AuditError(f"audit entry: {owner}.{name} is longer than {MAX_TEXT} characters")


def _hashes(owner: str, name: str, values: tuple[str, ...]) -> None:
    for value in values:
        if not isinstance(value, str) or not _HASH.match(value):
            raise AuditError(f"audit entry: {owner}.{name} must hold keyed hashes from "
                             "SubjectHasher, never identifiers or names")


def _count(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 0):
        raise AuditError(f"audit entry: {name} must be a whole number of milliseconds")


def _tupled(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if type(value) is tuple:
            continue
        if isinstance(value, list | set | frozenset):
            value = tuple(sorted(value)) if isinstance(value, set | frozenset) else tuple(value)
            object.__setattr__(obj, name, value)
        if not isinstance(getattr(obj, name), tuple):
            raise AuditError(f"audit entry: {name} must be a tuple or list")


@dataclass(frozen=True)
class Released:
    """One field an agency released, and the transform its agreement applied."""

    field: str
    transform: str

    def __post_init__(self) -> None:
        _text("released", "field", self.field)
        _text("released", "transform", self.transform)

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "transform": self.transform}


@dataclass(frozen=True)
class Outcome:
    """One agency's answer as far as accountability needs it (never the released values)."""

    agency: str
    state: str  # KNOWN | NOT_KNOWN | WITHHELD | NOT_CHECKED; blind lookups: CANDIDATE | SEALED
    reason: str = ""  # NOT_CHECKED reason, e.g. agent_offline
    agreement_id: str = ""
    policy_revision: str = ""
    matches: int = 0
    released: tuple[Released, ...] = ()
    withheld: tuple[str, ...] = ()
    record_refs: tuple[str, ...] = ()  # keyed hashes of the matched records (agent only)
    # The broker's "answers" entries: ms from fan-out to this agency's answer; None when the
    # agency was not asked, or for entries written before the field existed.
    answer_ms: int | None = None

    def __post_init__(self) -> None:
        _tupled(self, "released", "withheld", "record_refs")
        _count("outcome.answer_ms", self.answer_ms)
        for name in ("agency", "reason", "agreement_id", "policy_revision"):
            _text("outcome", name, getattr(self, name))
        if self.state not in STATES:
            raise AuditError(f"audit entry: outcome.state {self.state!r} is not one of "
                             f"{', '.join(STATES)}")
        if isinstance(self.matches, bool) or not isinstance(self.matches, int) or self.matches < 0:
            raise AuditError("audit entry: outcome.matches must be a count")
        released = tuple(r if isinstance(r, Released) else Released(**r) for r in self.released)
        object.__setattr__(self, "released", released)
        for name in self.withheld:
            _text("outcome", "withheld", name)
        _hashes("outcome", "record_refs", self.record_refs)

    @property
    def matched(self) -> bool:
        return self.state in MATCHED_STATES

    def to_dict(self) -> dict[str, Any]:
        return {"agency": self.agency, "state": self.state, "reason": self.reason,
                "agreement_id": self.agreement_id, "policy_revision": self.policy_revision,
                "matches": self.matches, "released": tuple(r.to_dict() for r in self.released),
                "withheld": self.withheld, "record_refs": self.record_refs,
                "answer_ms": self.answer_ms}


@dataclass(frozen=True)
class AuditEntry:
    """One accountable event. Build it with `mash.audit.build` or directly."""

    event: str
    lookup_id: str = ""
    query_id: str = ""
    requester: str = ""  # the analyst's user id, from the verified token
    requester_agency: str = ""
    role: str = ""
    team: str = ""
    purpose: str = ""
    stage: str = ""
    case_reference: str = ""
    justification: str = ""
    urgency: str = ""
    subject: tuple[str, ...] = ()  # keyed hashes from SubjectHasher.hashes()
    policy_revision: str = ""  # routing revision at the broker, policy bundle at an agent
    agreements: tuple[str, ...] = ()  # agreements that allowed the lookup (besides outcomes')
    asked: tuple[str, ...] = ()  # agencies the broker asked
    outcomes: tuple[Outcome, ...] = ()
    detail: str = ""  # a sentence without personal data
    # The broker's "answers" entries: ms from the lookup's arrival to its answer set (the board
    # report's timings; None before the field existed, which keeps old bodies verifiable).
    elapsed_ms: int | None = None

    def __post_init__(self) -> None:
        _count("entry.elapsed_ms", self.elapsed_ms)
        if self.event not in EVENTS:
            raise AuditError(f"audit entry: event {self.event!r} is not one of "
                             f"{', '.join(EVENTS)}")
        _tupled(self, "subject", "agreements", "asked", "outcomes")
        for name in _ENTRY_TEXT:
            _text("entry", name, getattr(self, name))
        for name in (*self.agreements, *self.asked):
            _text("entry", "agreements/asked", name)
        _hashes("entry", "subject", self.subject)
        outcomes = tuple(o if isinstance(o, Outcome) else Outcome(**o) for o in self.outcomes)
        object.__setattr__(self, "outcomes", outcomes)

    def to_dict(self) -> dict[str, Any]:
        """dataclasses.asdict, written out: entries are built on every query and answer, and
        the generic walk was the largest part of building one (tests/test_audit_api.py
        proves the two agree, so a new field cannot be left out)."""
        return {"event": self.event, "lookup_id": self.lookup_id, "query_id": self.query_id,
                "requester": self.requester, "requester_agency": self.requester_agency,
                "role": self.role, "team": self.team, "purpose": self.purpose,
                "stage": self.stage, "case_reference": self.case_reference,
                "justification": self.justification, "urgency": self.urgency,
                "subject": self.subject, "policy_revision": self.policy_revision,
                "agreements": self.agreements, "asked": self.asked,
                "outcomes": tuple(o.to_dict() for o in self.outcomes), "detail": self.detail,
                "elapsed_ms": self.elapsed_ms}

    def canonical(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_json(cls, text: str | bytes) -> AuditEntry:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def all_agreements(self) -> tuple[str, ...]:
        """Every agreement the entry was made under: retention follows the longest of them."""
        ids = set(self.agreements) | {o.agreement_id for o in self.outcomes}
        return tuple(sorted(i for i in ids if i))

    @property
    def notifies_owner(self) -> bool:
        """An agent's query that matched its records: the data owner is told who asked."""
        return self.event == "query" and any(o.matched for o in self.outcomes)

    def index_keys(self) -> tuple[str, ...]:
        """Search keys: subject hashes, matched records, case reference, requester, lookup."""
        keys = {f"s:{h}" for h in self.subject}
        keys |= {f"m:{r}" for o in self.outcomes for r in o.record_refs}
        if self.case_reference:
            keys.add(f"c:{self.case_reference}")
        if self.requester:
            keys.add(f"r:{self.requester}")
        if self.lookup_id:
            keys.add(f"l:{self.lookup_id}")
        return tuple(sorted(keys))


_ENTRY_TEXT = tuple(f.name for f in fields(AuditEntry) if f.type == "str")
