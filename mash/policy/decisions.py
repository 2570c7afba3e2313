"""Typed decisions over a loaded bundle: routing for the broker, disclosure for an agent.

A `LoadedPolicy` is immutable: one lookup uses one loaded policy from start to end, so a hot
reload can never mix two revisions in one answer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from mash.policy import transforms
from mash.policy.bundle import Bundle
from mash.policy.engine import Engine
from mash.policy.errors import PolicyError
from mash.policy.model import Gate, RecordDisclosure, Released, Requester, Withheld
from mash.records import PersonRecord


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


def _gate(raw: Any) -> Gate:
    if not isinstance(raw, dict) or not isinstance(raw.get("allowed"), bool):
        raise PolicyError("the policy gave no decision on whether to answer")
    if raw["allowed"]:
        return Gate(True, agreement_id=str(raw["agreement_id"]), answer=str(raw["answer"]),
                    warnings=tuple(raw.get("warnings", ())))
    refusal = raw.get("refusal")
    return Gate(False, refusal="no_agreement" if refusal == "no_agreement" else "policy_error",
                reason="; ".join(raw.get("reasons", ())) or "the policy refused")


@dataclass(frozen=True)
class LoadedPolicy:
    bundle: Bundle
    engine: Engine
    signer: str = ""

    @property
    def revision(self) -> str:
        return self.bundle.revision

    # --- the broker --------------------------------------------------------------------
    def purposes(self) -> dict[str, frozenset[str]]:
        raw = self.engine.evaluate("mash/routing/purposes", {})
        if not isinstance(raw, dict):
            raise PolicyError("the policy names no purposes")
        return {str(p): frozenset(stages) for p, stages in raw.items()}

    def route(self, requester: Requester, agencies: list[str],
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
        return _gate(self.engine.evaluate("mash/disclosure/gate",
                                          _input(requester, today, owner=owner)))

    def record_rules(self, owner: str, requester: Requester, fields: list[str],
                     values: dict[str, str], today: dt.date) -> dict[str, Any]:
        """The raw record decision: level, agreement, reasons, release rules, withheld."""
        raw = self.engine.evaluate("mash/disclosure/record", _input(
            requester, today, owner=owner, record={"fields": fields, "values": values}))
        if not isinstance(raw, dict) or raw.get("level") not in ("fields", "existence"):
            raise PolicyError("the policy gave no decision for a matched record")
        return raw

    def disclose(self, owner: str, requester: Requester, record: PersonRecord, today: dt.date,
                 context: transforms.TransformContext) -> RecordDisclosure:
        fields = sorted(k for k in record.values if k != "record_id")
        conditions = self.bundle.condition_fields(owner)
        values = {k: record.values[k] for k in conditions if k in record.values}
        raw = self.record_rules(owner, requester, fields, values, today)
        agreement_id = str(raw.get("agreement_id", ""))
        if raw["level"] == "existence":
            return RecordDisclosure("existence", agreement_id,
                                    reason="; ".join(raw.get("reasons", ())))
        out = RecordDisclosure("fields", agreement_id)
        for name, rule in sorted(raw.get("release", {}).items()):
            try:
                value = transforms.apply(rule["transform"], record.values.get(name),
                                         rule.get("params", {}), context)
            except transforms.TransformError as exc:
                out.withheld.append(Withheld(name, str(exc)))
                continue
            except (KeyError, TypeError, ValueError):
                raise PolicyError(f"the policy named a transform it cannot apply to "
                                  f"{name}") from None
            out.released.append(Released(name, value, rule["transform"]))
        for name, reason in sorted(raw.get("withheld", {}).items()):
            out.withheld.append(Withheld(name, str(reason)))
        return out
