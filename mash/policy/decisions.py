"""Typed decisions over a loaded bundle: routing for the broker, disclosure for an agent.

A `LoadedPolicy` is immutable: one lookup uses one loaded policy from start to end, so a hot
reload can never mix two revisions in one answer.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mash.policy import transforms
from mash.policy.bundle import Bundle
from mash.policy.engine import Engine
from mash.policy.errors import PolicyError
from mash.policy.model import (
    Gate,
    RecordDisclosure,
    Released,
    Requester,
    StageRules,
    Withheld,
)
from mash.records import PersonRecord

T = TypeVar("T")
_UNKNOWN = object()  # not in the memo (None is a value a decision may have)


@dataclass(frozen=True)
class RouteDecision:
    agency: str
    allowed: bool
    reason: str = ""  # when refused: a sentence for the analyst
    refusal: str = ""  # "no_agreement" or "policy_error"
    agreement_id: str = ""
    warnings: tuple[str, ...] = ()


def _input(requester: Requester, today: dt.date, **extra: Any) -> dict[str, Any]:
    return {"requester": {"agency": requester.agency, "role": requester.role},
            "purpose": requester.purpose, "stage": requester.stage,
            "today": today.isoformat(), **extra}


def _rules(raw: Any) -> StageRules:
    try:
        return StageRules(
            release={str(f): (str(r["transform"]), dict(r.get("params", {})))
                     for f, r in raw["release"].items()},
            dropped=frozenset(raw["dropped"]),
            not_released_reason=str(raw["not_released_reason"]),
            dropped_reason=str(raw["dropped_reason"]),
        )
    except (KeyError, TypeError, AttributeError):
        raise PolicyError("the policy gave no release rules for this stage") from None


def _gate(raw: Any) -> Gate:
    if not isinstance(raw, dict) or not isinstance(raw.get("allowed"), bool):
        raise PolicyError("the policy gave no decision on whether to answer")
    if raw["allowed"]:
        return Gate(True, agreement_id=str(raw["agreement_id"]), answer=str(raw["answer"]),
                    warnings=tuple(raw.get("warnings", ())), rules=_rules(raw.get("rules")))
    refusal = raw.get("refusal")
    return Gate(False, refusal="no_agreement" if refusal == "no_agreement" else "policy_error",
                reason="; ".join(raw.get("reasons", ())) or "the policy refused")


@dataclass(frozen=True)
class LoadedPolicy:
    bundle: Bundle
    engine: Engine
    signer: str = ""
    # Gate, routing and per-record decisions are pure functions of the (immutable) bundle
    # and their inputs, date included: each is evaluated once per day per distinct input.
    _memo: dict[tuple[object, ...], object] = field(default_factory=dict, compare=False,
                                                     repr=False)

    def _remember(self, key: tuple[object, ...], decide: Callable[[], T]) -> T:
        # one lookup, not "in" then "[]": another query thread may clear the memo between
        value = self._memo.get(key, _UNKNOWN)
        if value is _UNKNOWN:
            value = decide()
            self._keep(key, value)
        return value  # type: ignore[return-value]

    def _keep(self, key: tuple[object, ...], value: object) -> None:
        if len(self._memo) >= 4096:
            self._memo.clear()
        self._memo[key] = value

    @property
    def revision(self) -> str:
        return self.bundle.revision

    # --- the broker --------------------------------------------------------------------
    def purposes(self) -> dict[str, frozenset[str]]:
        """Purposes and their stages: fixed by the bundle, so evaluated once per bundle."""
        return dict(self._remember(("purposes",), self._purposes))

    def _purposes(self) -> dict[str, frozenset[str]]:
        raw = self.engine.evaluate("mash/routing/purposes", {})
        if not isinstance(raw, dict):
            raise PolicyError("the policy names no purposes")
        return {str(p): frozenset(stages) for p, stages in raw.items()}

    def route(self, requester: Requester, agencies: list[str],
              today: dt.date) -> list[RouteDecision]:
        return list(self._remember(("route", requester, tuple(sorted(agencies)), today),
                                   lambda: tuple(self._route(requester, agencies, today))))

    def _route(self, requester: Requester, agencies: list[str],
               today: dt.date) -> list[RouteDecision]:
        raw = self.engine.evaluate("mash/routing/decisions",
                                   _input(requester, today, agencies=sorted(agencies)))
        if not isinstance(raw, dict):
            raise PolicyError("the routing policy gave no decisions")
        out = []
        for agency in sorted(agencies):
            gate = _gate(raw.get(agency))
            out.append(RouteDecision(agency, gate.allowed, gate.reason, gate.refusal,
                                     gate.agreement_id, gate.warnings))
        return out

    # --- an agent ----------------------------------------------------------------------
    def gate(self, owner: str, requester: Requester, today: dt.date) -> Gate:
        return self._remember(("gate", owner, requester, today), lambda: _gate(
            self.engine.evaluate("mash/disclosure/gate", _input(requester, today, owner=owner))))

    def disclose_all(self, owner: str, requester: Requester, gate: Gate,
                     records: list[PersonRecord], today: dt.date,
                     context: transforms.TransformContext,
                     fields: Iterable[str] | None = None) -> list[RecordDisclosure]:
        """Decide every matched record of one query in one evaluation, under `gate`'s rules.

        The policy decides per record whether it may be shown at all (restrictions, stages
        that allow no detail); the stage's release rules come from the gate. Transforms are
        applied here; a value a transform cannot take is withheld with the reason.

        `fields`: every field the owner's sources map. The withheld list then names each of
        them the stage does not release, whether or not the record holds a value for it (a
        list of the record's own fields would say which of them hold data). Without it (tools
        and tests), the record's own fields.
        """
        universe = None if fields is None else frozenset(fields) - {"record_id"}
        if not gate.allowed or gate.rules is None:
            raise PolicyError("no agreement allows disclosure for this request")
        conditions = self.bundle.condition_fields(owner)
        inputs = [{"values": {k: r.values[k] for k in conditions if k in r.values}}
                  for r in records]
        # Each record is decided on its own (disclosure.rego), from the few values the
        # restrictions look at, so a decision is remembered per distinct such input: most
        # matched records share theirs, and the policy is asked only about new ones.
        keys = [("record", owner, requester, today, json.dumps(i, sort_keys=True))
                for i in inputs]
        decided = {k: self._memo.get(k, _UNKNOWN) for k in keys}
        new = {k: i for k, i in zip(keys, inputs, strict=True) if decided[k] is _UNKNOWN}
        if new:
            raw = self.engine.evaluate("mash/disclosure/records", _input(
                requester, today, owner=owner, records=list(new.values())))
            if not isinstance(raw, list) or len(raw) != len(new):
                raise PolicyError("the policy gave no decision for the matched records")
            for key, decision in zip(new, raw, strict=True):
                decided[key] = decision
                self._keep(key, decision)
        return [self._apply(gate, r, decided[k], context, universe)
                for r, k in zip(records, keys, strict=True)]

    def _apply(self, gate: Gate, record: PersonRecord, decision: Any,
               context: transforms.TransformContext,
               universe: frozenset[str] | None) -> RecordDisclosure:
        rules = gate.rules
        assert rules is not None
        if not isinstance(decision, dict) or decision.get("level") not in ("fields",
                                                                           "existence"):
            raise PolicyError("the policy gave no decision for a matched record")
        if decision["level"] == "existence":
            return RecordDisclosure("existence", gate.agreement_id,
                                    reason="; ".join(decision.get("reasons", ())))
        out = RecordDisclosure("fields", gate.agreement_id)
        names = universe if universe is not None else frozenset(record.values) - {"record_id"}
        for name in sorted(names):
            if name in rules.release:
                if name not in record.values:
                    continue  # released, and the record holds nothing to release
                transform, params = rules.release[name]
                try:
                    value = transforms.apply(transform, record.values[name], params, context)
                except transforms.TransformError as exc:
                    out.withheld.append(Withheld(name, str(exc)))
                    continue
                except (KeyError, TypeError, ValueError):
                    raise PolicyError(f"the policy named a transform it cannot apply to "
                                      f"{name}") from None
                out.released.append(Released(name, value, transform))
            elif name in rules.dropped:
                out.withheld.append(Withheld(name, rules.dropped_reason))
            else:
                out.withheld.append(Withheld(name, rules.not_released_reason))
        return out

    def disclose(self, owner: str, requester: Requester, record: PersonRecord, today: dt.date,
                 context: transforms.TransformContext) -> RecordDisclosure:
        """One record, gate included (for tools and tests; agents use disclose_all)."""
        gate = self.gate(owner, requester, today)
        if not gate.allowed:
            raise PolicyError(gate.reason)
        return self.disclose_all(owner, requester, gate, [record], today, context)[0]
