"""The whole decision space of a bundle, decided by the compiled policy itself.

Every question an agreement can answer is a cell: owner x requester agency x role x purpose x
stage (the fields are the cell's release rules). The space is finite, so it is enumerated
completely, never sampled, and each cell is decided by the same `LoadedPolicy` (routing at the
broker, the gate and the record decision at an agent) that services use: a diff, an assertion
or a replay can never disagree with what an agent would do, because it asks the same engine.

Record-level restrictions (`withhold_when`) are decided by probing the policy with one record
per (field, value) the agreements of either side name: the policy says which of them withhold
the whole record.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from mash.policy import transforms
from mash.policy.bundle import Bundle
from mash.policy.decisions import LoadedPolicy
from mash.policy.model import Requester
from mash.records import PersonRecord

Answer = Literal["not_asked", "withheld", "known"]
# How an IG lead reads each answer level (README, "Answer levels").
ANSWER_WORDS: dict[str, str] = {
    "not_asked": "not asked (NOT_CHECKED)",
    "withheld": "says only that it holds something (WITHHELD)",
    "known": "answers KNOWN or NOT_KNOWN with its released fields",
}


@dataclass(frozen=True, order=True)
class Cell:
    owner: str
    requester: str
    role: str
    purpose: str
    stage: str

    def words(self) -> str:
        return (f"{self.owner} to {self.requester} ({self.role}) for {self.purpose} at "
                f"{self.stage}")

    def to_dict(self) -> dict[str, str]:
        return {"owner": self.owner, "requester": self.requester, "role": self.role,
                "purpose": self.purpose, "stage": self.stage}


@dataclass(frozen=True)
class Release:
    transform: str
    params: str = "{}"  # canonical JSON of the transform's parameters

    def words(self) -> str:
        return self.transform + ("" if self.params == "{}" else f" {self.params}")


@dataclass(frozen=True)
class Decision:
    answer: Answer
    agreement_id: str = ""
    reason: str = ""  # why not asked
    released: dict[str, Release] = field(default_factory=dict)
    # (field, value) pairs that withhold a matched record whole
    restrictions: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Universe:
    """The axes of the space: the union over the bundles compared, so neither misses a cell."""

    agencies: tuple[str, ...]
    roles: tuple[str, ...]
    stages: dict[str, tuple[str, ...]]  # purpose -> stages in the federation's order
    probes: dict[str, frozenset[tuple[str, str]]]  # owner -> (field, value) restriction probes

    def cells(self) -> Iterator[Cell]:
        for owner in self.agencies:
            for requester in self.agencies:
                if requester == owner:
                    continue
                for role in self.roles:
                    for purpose, stages in self.stages.items():
                        for stage in stages:
                            yield Cell(owner, requester, role, purpose, stage)

    def size(self) -> int:
        n = len(self.agencies)
        return n * (n - 1) * len(self.roles) * sum(len(s) for s in self.stages.values())


def _ordered_union(lists: Iterable[Iterable[str]]) -> tuple[str, ...]:
    out: list[str] = []
    for items in lists:
        out += [i for i in items if i not in out]
    return tuple(out)


def universe(*bundles: Bundle) -> Universe:
    feds = [b.federation for b in bundles]
    stages: dict[str, tuple[str, ...]] = {}
    for fed in feds:
        for purpose, spec in fed.get("purposes", {}).items():
            stages[purpose] = _ordered_union([stages.get(purpose, ()), spec.get("stages", [])])
    probes: dict[str, set[tuple[str, str]]] = {}
    for b in bundles:
        for a in b.agreements.values():
            for g in a["grants"]:
                for c in g["withhold_when"]:
                    probes.setdefault(g["owner"], set()).update(
                        (str(c["field"]), str(v)) for v in c["equals"])
    return Universe(
        agencies=tuple(sorted({str(a) for fed in feds for a in fed.get("agencies", {})})),
        roles=_ordered_union(fed.get("roles", []) for fed in feds),
        stages=stages,
        probes={o: frozenset(p) for o, p in probes.items()},
    )


def _canonical(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(", ", ": "))


def _probe(field_name: str, value: str) -> PersonRecord:
    return PersonRecord("probe", "probe", (), None, "", (), {}, {field_name: value})


def decide_all(policy: LoadedPolicy, space: Universe, today: dt.date) -> dict[Cell, Decision]:
    """Every cell of `space`, decided by `policy` as on `today` (PolicyError fails the run)."""
    out: dict[Cell, Decision] = {}
    context = transforms.TransformContext(today=today)
    routed: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for cell in space.cells():
        who = Requester(cell.requester, cell.role, cell.purpose, cell.stage)
        key = (cell.requester, cell.role, cell.purpose, cell.stage)
        if key not in routed:
            routed[key] = {r.agency: r for r in policy.route(who, list(space.agencies), today)}
        route = routed[key][cell.owner]
        if not route.allowed:
            out[cell] = Decision("not_asked", reason=route.reason)
            continue
        gate = policy.gate(cell.owner, who, today)
        if not gate.allowed or gate.rules is None:
            out[cell] = Decision("not_asked", reason=gate.reason)
            continue
        if gate.answer == "existence":
            out[cell] = Decision("withheld", gate.agreement_id)
            continue
        probes = sorted(space.probes.get(cell.owner, ()))
        decided = policy.disclose_all(cell.owner, who, gate, [_probe(f, v) for f, v in probes],
                                      today, context, fields=()) if probes else []
        out[cell] = Decision(
            "known", gate.agreement_id,
            released={f: Release(t, _canonical(p)) for f, (t, p) in gate.rules.release.items()},
            restrictions=frozenset(p for p, d in zip(probes, decided, strict=True)
                                   if d.level == "existence"))
    return out
