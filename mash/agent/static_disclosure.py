"""Disclosure from a per-agency table in agent.yaml: fields released per stage.

A stop-gap until agreements are evaluated as policy: grants name the requesting agency,
roles, purposes and, per stage, the fields released with a transform each.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from mash.agent.disclosure import (
    Gate,
    RecordDisclosure,
    Released,
    Requester,
    Withheld,
)
from mash.config import Reader
from mash.policy import transforms
from mash.records import PersonRecord


@dataclass(frozen=True)
class StageGrant:
    answer: str  # "known" or "existence"
    release: dict[str, tuple[str, dict[str, Any]]]  # field -> (transform, params)


@dataclass(frozen=True)
class Grant:
    agreement_id: str
    requester: str
    roles: frozenset[str]
    purposes: frozenset[str]
    stages: dict[str, StageGrant]


class StaticDisclosure:
    def __init__(self, grants: list[Grant], restricted_field: str | None,
                 context: transforms.TransformContext, revision: str) -> None:
        self._grants = grants
        self._restricted_field = restricted_field
        self._context = context
        self._revision = revision

    @property
    def revision(self) -> str:
        return self._revision

    @classmethod
    def read(cls, section: Reader, hmac_key: bytes, known_fields: set[str]) -> StaticDisclosure:
        grants = []
        raw_for_revision = []
        for g in section.sections("grants"):
            stages: dict[str, StageGrant] = {}
            stage_map = g.mapping("stages")
            raw_for_revision.append(stage_map)
            for stage, spec in stage_map.items():
                spec = spec or {}
                where = g.label(f"stages.{stage}")
                answer = spec.get("answer", "known")
                if answer not in ("known", "existence"):
                    raise g.error(f"stages.{stage}.answer", "must be known or existence")
                release: dict[str, tuple[str, dict[str, Any]]] = {}
                for name, rule in (spec.get("release") or {}).items():
                    if name not in known_fields:
                        raise g.error(f"stages.{stage}.release.{name}",
                                      "is not a field any source maps")
                    if isinstance(rule, str):
                        rule = {"transform": rule}
                    rule = dict(rule)
                    transform = rule.pop("transform", "keep")
                    transforms.validate_params(transform, rule, f"{where}.release.{name}")
                    release[name] = (transform, rule)
                stages[str(stage)] = StageGrant(answer, release)
            grants.append(Grant(
                agreement_id=g.str("agreement"),
                requester=g.str("requester"),
                roles=frozenset(g.str_list("roles")),
                purposes=frozenset(g.str_list("purposes")),
                stages=stages,
            ))
            g.done()
        restricted = section.str("restricted_field", None)
        section.done()
        digest = hashlib.sha256(
            json.dumps(raw_for_revision, sort_keys=True, default=str).encode()).hexdigest()
        return cls(grants, restricted, transforms.TransformContext(hmac_key=hmac_key),
                   f"static-{digest[:12]}")

    def _find(self, r: Requester) -> tuple[Grant, StageGrant] | None:
        for grant in self._grants:
            if (grant.requester == r.agency and r.role in grant.roles
                    and r.purpose in grant.purposes and r.stage in grant.stages):
                return grant, grant.stages[r.stage]
        return None

    def gate(self, requester: Requester) -> Gate:
        found = self._find(requester)
        if found is None:
            return Gate(False, refusal="no_agreement", reason=(
                f"no agreement lets {requester.agency} ({requester.role}) ask this agency for "
                f"{requester.purpose} at stage {requester.stage}"))
        return Gate(True, agreement_id=found[0].agreement_id)

    def disclose(self, requester: Requester, record: PersonRecord) -> RecordDisclosure:
        found = self._find(requester)
        if found is None:  # gate() was checked first; treat a race as no agreement
            return RecordDisclosure("existence", "", reason="no agreement covers this request")
        grant, stage = found
        if self._restricted_field and record.values.get(self._restricted_field, "").lower() in (
                "1", "true", "yes", "y"):
            return RecordDisclosure("existence", grant.agreement_id,
                                    reason="the record is restricted: contact the agency")
        if stage.answer == "existence":
            return RecordDisclosure("existence", grant.agreement_id,
                                    reason=f"the agreement allows no detail at {requester.stage}")
        out = RecordDisclosure("fields", grant.agreement_id)
        for name, (transform, params) in stage.release.items():
            if transform == "drop":
                out.withheld.append(Withheld(name, "dropped by the agreement"))
                continue
            value = record.values.get(name)
            if value is None:
                continue
            try:
                out.released.append(
                    Released(name, transforms.apply(transform, value, params, self._context),
                             transform))
            except transforms.TransformError as exc:
                out.withheld.append(Withheld(name, str(exc)))
        for name in sorted(set(record.values) - set(stage.release) - {"record_id"}):
            out.withheld.append(Withheld(name, f"not released at {requester.stage}"))
        return out
