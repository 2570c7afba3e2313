"""Rules that must never be broken, proven over the whole decision space.

An IG lead writes them in policies/assertions/*.yaml:

    assertions:
      - rule: police never releases incident_summary before s47
        never_release: incident_summary     # a field, a list of fields, or "anything"
        owner: police
        before: s47
      - rule: police incident dates leave only to the month
        only_as: {last_incident_date: [month, year]}
      - rule: nothing is released without a lawful basis
        lawful_basis: required
      - rule: probation is never asked about children
        never_asked: true
        owner: probation
        purpose: child_safeguarding

Each assertion states exactly one of never_release, only_as, never_asked or lawful_basis,
and may narrow the cells it speaks about with owner, requester, role, purpose and stage (each
a name or a list) and `before: STAGE` (the stages before STAGE in each purpose that has it).
It is checked against every cell the compiled policy decides (mash.policy.space), so a
broken rule always comes with its exact counterexample. Names are checked against the
federation: a misspelt agency or stage is an error, never a rule that holds because it
speaks about nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationInfo, model_validator

from mash.config import ConfigModel, Invalid, Text, load_model
from mash.errors import ConfigError
from mash.policy.agreements import FIELD, complete_basis
from mash.policy.bundle import Bundle
from mash.policy.decisions import LoadedPolicy
from mash.policy.errors import AgreementError
from mash.policy.space import Cell, Decision, Universe, decide_all, universe
from mash.policy.transforms import TRANSFORM_NAMES

KINDS = ("never_release", "only_as", "never_asked", "lawful_basis")
SELECTORS = ("owner", "requester", "role", "purpose", "stage")
ANYTHING = "anything"


@dataclass(frozen=True)
class Assertion:
    rule: str
    where: str  # file and position, for messages
    kind: str
    selectors: dict[str, frozenset[str]]  # selector -> allowed names (absent: any)
    before: str = ""
    fields: frozenset[str] = frozenset()  # never_release; empty: anything
    only_as: tuple[tuple[str, frozenset[str]], ...] = ()  # field -> transforms allowed

    def covers(self, cell: Cell, stages: dict[str, tuple[str, ...]]) -> bool:
        for name, allowed in self.selectors.items():
            if getattr(cell, name) not in allowed:
                return False
        if self.before:
            order = stages.get(cell.purpose, ())
            if self.before not in order:
                return False
            return order.index(cell.stage) < order.index(self.before)
        return True


@dataclass(frozen=True)
class Counterexample:
    cell: Cell
    field: str = ""
    transform: str = ""
    agreement_id: str = ""

    def words(self) -> str:
        what = (f"releases {self.field}" + (f" ({self.transform})" if self.transform else "")
                + " to") if self.field else "answers"
        return (f"{self.cell.owner} {what} {self.cell.requester} ({self.cell.role}) for "
                f"{self.cell.purpose} at {self.cell.stage}"
                + (f" under {self.agreement_id}" if self.agreement_id else ""))

    def to_dict(self) -> dict[str, str]:
        return {**self.cell.to_dict(), "field": self.field, "transform": self.transform,
                "agreement": self.agreement_id}


@dataclass(frozen=True)
class Proof:
    assertion: Assertion
    cells: int  # cells the assertion speaks about
    counterexample: Counterexample | None

    @property
    def holds(self) -> bool:
        return self.counterexample is None

    def words(self) -> str:
        if self.counterexample is None:
            return f"holds over {self.cells} cell(s)"
        return f"BROKEN: {self.counterexample.words()}"


def _names(value: Any, known: set[str]) -> frozenset[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or \
            not all(isinstance(v, str) and v.strip() for v in values):
        raise Invalid("give a name or a list of names")
    unknown = sorted(set(values) - known)
    if unknown:
        raise Invalid(f"unknown {', '.join(map(repr, unknown))} (known: "
                      f"{', '.join(sorted(known))})")
    return frozenset(values)


class AssertionSpec(ConfigModel):
    """One of `assertions:`, checked against the decision space (the context's `universe`):
    names of agencies, roles, purposes, stages and transforms must exist."""

    rule: Text
    never_release: Any = None
    only_as: Any = None
    never_asked: Any = None
    lawful_basis: Any = None
    owner: Any = None
    requester: Any = None
    role: Any = None
    purpose: Any = None
    stage: Any = None
    before: Text = ""

    def build(self, where: str, space: Universe) -> Assertion:
        """The assertion, or Invalid naming the key."""
        kinds = [k for k in KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise Invalid(f"state exactly one of {', '.join(KINDS)}", key="rule")
        kind = kinds[0]
        known = {"owner": set(space.agencies), "requester": set(space.agencies),
                 "role": set(space.roles), "purpose": set(space.stages),
                 "stage": {s for stages in space.stages.values() for s in stages}}
        selectors = {}
        for key in SELECTORS:
            if getattr(self, key) is not None:
                try:
                    selectors[key] = _names(getattr(self, key), known[key])
                except Invalid as exc:
                    raise Invalid(exc.message, key=key) from None
        if self.before and self.before not in known["stage"]:
            raise Invalid(f"{self.before!r} is not one of {', '.join(sorted(known['stage']))}",
                          key="before")
        fields: frozenset[str] = frozenset()
        only_as: tuple[tuple[str, frozenset[str]], ...] = ()
        if kind == "never_release":
            raw = self.never_release
            if raw != ANYTHING:
                names = [raw] if isinstance(raw, str) else raw
                if not isinstance(names, list) or not names or not all(
                        isinstance(n, str) and FIELD.match(n) for n in names):
                    raise Invalid("give a field, a list of fields, or anything",
                                  key="never_release")
                fields = frozenset(names)
        elif kind == "only_as":
            spec = self.only_as
            if not isinstance(spec, dict):
                raise Invalid(f"expected a mapping, got {type(spec).__name__}", key="only_as")
            if not spec:
                raise Invalid("name a field and the transforms it may leave as", key="only_as")
            pairs = []
            for name, allowed in spec.items():
                try:
                    pairs.append((str(name), _names(allowed, set(TRANSFORM_NAMES))))
                except Invalid as exc:
                    raise Invalid(exc.message, key=f"only_as.{name}: transforms") from None
            only_as = tuple(sorted(pairs))
        elif kind == "never_asked":
            if self.never_asked is not True:
                raise Invalid("write never_asked: true", key="never_asked")
        elif self.lawful_basis != "required":
            raise Invalid("write lawful_basis: required", key="lawful_basis")
        return Assertion(self.rule, where, kind, selectors, self.before, fields, only_as)


class AssertionsFile(ConfigModel):
    """policies/assertions/*.yaml."""

    assertions: list[AssertionSpec]

    @model_validator(mode="after")
    def _checked(self, info: ValidationInfo) -> AssertionsFile:
        space = (info.context or {}).get("universe")
        if isinstance(space, Universe):
            for i, spec in enumerate(self.assertions):
                try:
                    spec.build("", space)
                except Invalid as exc:
                    raise Invalid(exc.message, key=f"assertions[{i}]: {exc.key}") from None
        return self


def load(src: Path, bundle: Bundle) -> list[Assertion]:
    """Every assertion under src/assertions (none when the folder is absent)."""
    space = universe(bundle)
    out: list[Assertion] = []
    for path in sorted((src / "assertions").glob("*.yaml")):
        try:
            top = load_model(AssertionsFile, path, universe=space)
        except ConfigError as exc:
            raise AgreementError(str(exc)) from None
        out += [spec.build(f"{path} assertions[{i}]", space)
                for i, spec in enumerate(top.assertions)]
    return out


def _lawful(bundle: Bundle, cell: Cell, agreement_id: str) -> bool:
    agreement = bundle.agreements.get(agreement_id, {})
    for g in agreement.get("grants", []):
        if g["owner"] == cell.owner and g["requester"] == cell.requester:
            spec = g["purposes"].get(cell.purpose)
            if spec is not None and complete_basis(spec["lawful_basis"]):
                return True
    return False


def _violation(a: Assertion, bundle: Bundle, cell: Cell,
               d: Decision) -> Counterexample | None:
    if d.answer == "not_asked":
        return None
    if a.kind == "never_asked":
        return Counterexample(cell, agreement_id=d.agreement_id)
    if a.kind == "lawful_basis":
        if not _lawful(bundle, cell, d.agreement_id):
            name = next(iter(sorted(d.released)), "")
            return Counterexample(cell, name, d.released[name].words() if name else "",
                                  d.agreement_id)
        return None
    for name in sorted(d.released):
        release = d.released[name]
        if a.kind == "never_release" and (not a.fields or name in a.fields):
            return Counterexample(cell, name, release.words(), d.agreement_id)
        if a.kind == "only_as":
            allowed = dict(a.only_as).get(name)
            if allowed is not None and release.transform not in allowed:
                return Counterexample(cell, name, release.words(), d.agreement_id)
    return None


def prove(policy: LoadedPolicy, assertions: list[Assertion], today: dt.date) -> list[Proof]:
    """Each assertion over every cell, as on `today`: the first counterexample, if any."""
    if not assertions:
        return []
    space = universe(policy.bundle)
    decided = decide_all(policy, space, today)
    proofs = []
    for a in assertions:
        cells = [c for c in space.cells() if a.covers(c, space.stages)]
        found = None
        for cell in cells:
            found = _violation(a, policy.bundle, cell, decided[cell])
            if found is not None:
                break
        proofs.append(Proof(a, len(cells), found))
    return proofs


def unused_fields(assertions: list[Assertion], bundle: Bundle) -> list[str]:
    """Warnings for fields an assertion names that no agreement names (it holds trivially)."""
    named: set[str] = set()
    for owner in {g["owner"] for a in bundle.agreements.values() for g in a["grants"]}:
        named |= bundle.released_fields(owner) | bundle.condition_fields(owner)
    out = []
    for a in assertions:
        for name in sorted(a.fields | {f for f, _ in a.only_as}):
            if name not in named:
                out.append(f"{a.where}: {a.rule!r}: no agreement names {name}, so it holds "
                           "trivially (a misspelling?)")
    return out


def to_dict(proof: Proof) -> dict[str, Any]:
    return {"rule": proof.assertion.rule, "where": proof.assertion.where,
            "holds": proof.holds, "cells": proof.cells,
            "counterexample": proof.counterexample.to_dict() if proof.counterexample else None}
