"""`mash policy replay`: yesterday's audited answers, re-decided under a proposed bundle.

An agent's "query" audit entries keep who asked (requesting agency, role, purpose, stage), the
agreement, the answer state and the names of the fields released (with their transform) and
withheld, never the values (mash.audit.entry). Each is re-decided by the proposed bundle's
compiled policy, as on the day it was made, and compared with what was actually answered.

What cannot be re-decided is said so, never guessed: a lookup the agent did not search
(offline, too few identifiers, no approval) has no result to compare; a record withheld
whole by a restriction depends on its values, which the audit does not keep; a field is
"newly released" only where the record was seen to have it mapped, and only if it holds a
value; a WITHHELD answer under a stage that now releases fields depends on the record.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from mash.audit.entry import AuditEntry
from mash.audit.store import AuditStore, Filter
from mash.policy.decisions import LoadedPolicy
from mash.policy.errors import PolicyError
from mash.policy.model import Requester

# NOT_CHECKED reasons that the policy gave: re-decidable (nothing was searched, though).
POLICY_REASONS = frozenset({"no_agreement", "policy_error"})


@dataclass(frozen=True, order=True)
class Key:
    requester: str
    purpose: str
    stage: str
    change: str  # e.g. "KNOWN -> NOT_CHECKED", "no longer released", "transform changed"
    field: str = ""
    detail: str = ""


@dataclass
class Replay:
    agency: str
    replayed: int = 0  # query decisions read
    changed: int = 0  # decisions whose answer or released fields would change
    changes: Counter[Key] = field(default_factory=Counter)
    not_redecided: Counter[str] = field(default_factory=Counter)  # why -> count

    def rows(self) -> list[tuple[Key, int]]:
        return sorted(self.changes.items())


def _state_change(old: str, new: str, key: tuple[str, str, str]) -> Key:
    return Key(*key, f"{old} -> {new}")


def replay_entry(policy: LoadedPolicy, agency: str, entry: AuditEntry, day: dt.date,
                 out: Replay) -> None:
    """Re-decide one agent "query" entry under `policy`, adding what changes to `out`."""
    if len(entry.outcomes) != 1 or entry.outcomes[0].agency != agency:
        out.not_redecided["the entry is not one answer of this agency"] += 1
        return
    old = entry.outcomes[0]
    if old.state == "NOT_CHECKED" and old.reason not in POLICY_REASONS:
        out.not_redecided[f"not searched then ({old.reason or 'no reason'})"] += 1
        return
    if old.state not in ("KNOWN", "NOT_KNOWN", "WITHHELD", "NOT_CHECKED"):
        out.not_redecided[f"a {old.state} answer (blind lookup)"] += 1
        return
    who = Requester(entry.requester_agency, entry.role, entry.purpose, entry.stage)
    key = (who.agency, who.purpose, who.stage)
    try:
        gate = policy.gate(agency, who, day)
    except PolicyError:
        gate = None
    if gate is None or not gate.allowed or gate.rules is None:
        if old.state != "NOT_CHECKED":
            out.changes[_state_change(old.state, "NOT_CHECKED", key)] += 1
            out.changed += 1
        return
    if old.state == "NOT_CHECKED":
        out.changes[Key(*key, "NOT_CHECKED -> searched", detail="not searched then: the "
                                                              "result is unknown")] += 1
        out.changed += 1
        return
    if old.state == "NOT_KNOWN":
        return  # no record matched: the same under any agreement that lets it be asked
    if gate.answer == "existence":
        if old.state == "KNOWN":
            out.changes[_state_change("KNOWN", "WITHHELD", key)] += 1
            out.changed += 1
        return
    if old.state == "WITHHELD":
        # by a restriction, by the stage, or because the records could not be told apart:
        # the audit does not say which, and the values that would decide it are not kept
        out.not_redecided["withheld then, a stage that releases fields now: the record's "
                          "values decide"] += 1
        return
    changed = False
    release = gate.rules.release
    for r in old.released:
        if r.field not in release:
            out.changes[Key(*key, "no longer released", r.field, r.transform)] += 1
            changed = True
        elif release[r.field][0] != r.transform:
            out.changes[Key(*key, "transform changed", r.field,
                            f"{r.transform} -> {release[r.field][0]}")] += 1
            changed = True
    for name in old.withheld:
        if name in release:
            out.changes[Key(*key, "newly released (if the record holds it)", name,
                            release[name][0])] += 1
            changed = True
    out.changed += changed


def replay(policy: LoadedPolicy, store: AuditStore, *, agency: str, writer_id: str,
           since: str = "", until: str = "") -> Replay:
    """Every audited query answer of `writer_id` in [since, until), re-decided by `policy`."""
    out = Replay(agency)
    for row in store.find(Filter(since=since, until=until, writer_id=writer_id)):
        if row.body is None:
            out.not_redecided["purged under retention"] += 1
            continue
        entry = AuditEntry.from_json(row.body)
        if entry.event != "query":
            continue
        out.replayed += 1
        replay_entry(policy, agency, entry, dt.date.fromisoformat(row.recorded_at[:10]), out)
    return out
