"""`mash policy diff`: every difference two bundles make, over the whole decision space.

Both bundles are decided cell by cell by their own compiled policy (mash.policy.space), so a
difference here is a difference an agent would make. Changes are put in the IG lead's words
and grouped over roles: one planted change is one row, naming every role it affects.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from mash.policy.bundle import Bundle
from mash.policy.decisions import LoadedPolicy
from mash.policy.space import ANSWER_WORDS, Cell, Decision, Universe, decide_all, universe

# kind -> what it means (README, "What changed: mash policy diff")
KINDS = {
    "agreement_added": "an agreement is new",
    "agreement_removed": "an agreement is gone",
    "agreement_redated": "an agreement's valid_from, review_by or expires changed",
    "lawful_basis": "the lawful basis a grant gives for a purpose changed",
    "routing": "the broker now asks, or no longer asks, the owner",
    "answer": "the answer level changed (known / existence)",
    "agreement": "another agreement now governs the answer",
    "released": "a field is newly released",
    "not_released": "a field is no longer released",
    "transform": "a released field's transform or its parameters changed",
    "restriction_added": "a record holding this value is now withheld whole",
    "restriction_removed": "a record holding this value is no longer withheld whole",
}


@dataclass(frozen=True)
class Change:
    kind: str
    text: str  # the change, in a sentence
    owner: str = ""
    requester: str = ""
    roles: tuple[str, ...] = ()
    purpose: str = ""
    stage: str = ""
    field: str = ""
    agreement: str = ""
    old: str = ""
    new: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "owner": self.owner,
                "requester": self.requester, "roles": list(self.roles),
                "purpose": self.purpose, "stage": self.stage, "field": self.field,
                "agreement": self.agreement, "old": self.old, "new": self.new}


def _where(cell: Cell, roles: tuple[str, ...]) -> str:
    return (f"{cell.owner} to {cell.requester} ({', '.join(roles)}) for {cell.purpose} "
            f"at {cell.stage}")


def _cell_changes(cell: Cell, old: Decision, new: Decision) -> list[tuple[str, str, str, str,
                                                                          str]]:
    """(kind, field, agreement, old, new) for one cell."""
    out: list[tuple[str, str, str, str, str]] = []
    if (old.answer == "not_asked") != (new.answer == "not_asked"):
        out.append(("routing", "", new.agreement_id or old.agreement_id,
                    "asked" if old.answer != "not_asked" else "not asked",
                    "asked" if new.answer != "not_asked" else "not asked"))
    if "not_asked" not in (old.answer, new.answer):
        if old.answer != new.answer:
            out.append(("answer", "", new.agreement_id, old.answer, new.answer))
        if old.agreement_id != new.agreement_id:
            out.append(("agreement", "", new.agreement_id, old.agreement_id, new.agreement_id))
    elif new.answer == "withheld":
        out.append(("answer", "", new.agreement_id, "not asked", new.answer))
    for name in sorted(set(old.released) | set(new.released)):
        before, after = old.released.get(name), new.released.get(name)
        if before is None and after is not None:
            out.append(("released", name, new.agreement_id, "", after.words()))
        elif before is not None and after is None:
            out.append(("not_released", name, old.agreement_id, before.words(), ""))
        elif before is not None and after is not None and before != after:
            out.append(("transform", name, new.agreement_id, before.words(), after.words()))
    if old.answer != "known" or new.answer != "known":
        return out  # a record withheld or not asked: no restriction makes a difference
    for f, v in sorted(new.restrictions - old.restrictions):
        out.append(("restriction_added", f, new.agreement_id, "", v))
    for f, v in sorted(old.restrictions - new.restrictions):
        out.append(("restriction_removed", f, old.agreement_id, v, ""))
    return out


def _sentence(kind: str, cell: Cell, roles: tuple[str, ...], name: str, old: str,
              new: str) -> str:
    where = _where(cell, roles)
    return {
        "routing": f"{where}: {old} -> {new}",
        "answer": f"{where}: {ANSWER_WORDS.get(old, old)} -> {ANSWER_WORDS.get(new, new)}",
        "agreement": f"{where}: now under {new} (was {old})",
        "released": f"{where}: {name} newly released ({new})",
        "not_released": f"{where}: {name} no longer released (was {old})",
        "transform": f"{where}: {name} released as {new} (was {old})",
        "restriction_added": f"{where}: records with {name} = {new} now withheld whole",
        "restriction_removed": f"{where}: records with {name} = {old} no longer withheld "
                               "whole",
    }[kind]


def _agreement_changes(old: Bundle, new: Bundle, today: dt.date) -> list[Change]:
    out: list[Change] = []
    for aid in sorted(set(new.agreements) - set(old.agreements)):
        a = new.agreements[aid]
        out.append(Change("agreement_added", f"agreement {aid} added ({a['valid_from']} to "
                                             f"{a['expires']})", agreement=aid,
                          new=f"{a['valid_from']} to {a['expires']}"))
    for aid in sorted(set(old.agreements) - set(new.agreements)):
        out.append(Change("agreement_removed", f"agreement {aid} removed", agreement=aid))
    for aid in sorted(set(old.agreements) & set(new.agreements)):
        a, b = old.agreements[aid], new.agreements[aid]
        for key in ("valid_from", "review_by", "expires"):
            if a[key] != b[key]:
                lapsed = key == "expires" and b[key] < today.isoformat() <= a[key]
                out.append(Change("agreement_redated", f"agreement {aid}: {key} {a[key]} -> "
                                  f"{b[key]}" + (f" (expired as on {today}: it shares "
                                                 "nothing)" if lapsed else ""),
                                  agreement=aid, field=key, old=a[key], new=b[key]))
        bases: dict[tuple[str, str, str], dict[str, Any]] = {}
        for side, doc in (("old", a), ("new", b)):
            for g in doc["grants"]:
                for purpose, p in g["purposes"].items():
                    bases.setdefault((g["owner"], g["requester"], purpose), {})[side] = \
                        p["lawful_basis"]
        for (owner, requester, purpose), sides in sorted(bases.items()):
            before, after = sides.get("old", {}), sides.get("new", {})
            for key in sorted(set(before) | set(after)):
                if before.get(key) != after.get(key):
                    out.append(Change(
                        "lawful_basis", f"agreement {aid}: {owner} to {requester} for "
                        f"{purpose}: lawful basis {key} changed", owner=owner,
                        requester=requester, purpose=purpose, field=key, agreement=aid,
                        old=before.get(key, ""), new=after.get(key, "")))
    return out


def diff_decisions(old: dict[Cell, Decision], new: dict[Cell, Decision],
                   space: Universe) -> list[Change]:
    """Changes between two decided spaces, one row per change with its roles merged."""
    grouped: dict[tuple[str, ...], list[str]] = {}
    cells: dict[tuple[str, ...], Cell] = {}
    for cell in space.cells():
        for kind, name, agreement, before, after in _cell_changes(cell, old[cell], new[cell]):
            key: tuple[str, ...] = (kind, cell.owner, cell.requester, cell.purpose, cell.stage,
                                    name, agreement, before, after)
            grouped.setdefault(key, []).append(cell.role)
            cells.setdefault(key, cell)
    out = []
    for key, roles in grouped.items():
        kind, _o, _r, _p, _s, name, agreement, before, after = key
        cell = cells[key]
        out.append(Change(kind, _sentence(kind, cell, tuple(roles), name, before, after),
                          owner=cell.owner, requester=cell.requester, roles=tuple(roles),
                          purpose=cell.purpose, stage=cell.stage, field=name,
                          agreement=agreement, old=before, new=after))
    return out


def diff(old: LoadedPolicy, new: LoadedPolicy, today: dt.date) -> list[Change]:
    """Every difference `new` makes against `old`, as on `today`."""
    space = universe(old.bundle, new.bundle)
    return _agreement_changes(old.bundle, new.bundle, today) + diff_decisions(
        decide_all(old, space, today), decide_all(new, space, today), space)
