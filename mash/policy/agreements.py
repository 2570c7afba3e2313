"""Memoranda of understanding as YAML: loading, validation and compilation to policy data.

An IG lead edits `policies/mous/*.yaml`; `policies/federation.yaml` names the agencies and the
purposes and stages they recognise. Everything here is checked at load: a misspelt stage, an
unknown transform or party, impossible dates are errors naming the file and the key, and the
agreement never reaches an agent. Whether an agreement may be *used* today (in force, lawful
basis complete) is decided by the Rego library, so that a lapsed agreement fails closed with a
reason at lookup time.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ValidationInfo, model_validator

from mash.config import (
    AnyMapping,
    ConfigModel,
    Invalid,
    Text,
    TextList,
    load_model,
    number,
    one_of,
    whole,
)
from mash.errors import ConfigError, IdentityError
from mash.identity.names import check_agency_id
from mash.policy import transforms
from mash.policy.errors import AgreementError

ID = re.compile(r"^[a-z][a-z0-9-]{2,80}$")
FIELD = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
ANSWERS = ("known", "existence")
BASIS_KEYS = ("article_6", "article_9", "schedule_1", "part_3")


@dataclass(frozen=True)
class Federation:
    agencies: dict[str, str]
    purposes: dict[str, dict[str, Any]]  # purpose -> {title, stages}
    roles: tuple[str, ...]
    # Stages at which a lookup needs a stage approval, and who may give one
    # (mash/identity/approvals.py). Absent from the bundle when none is required.
    approval_required: tuple[str, ...] = ()
    approver_roles: tuple[str, ...] = ()
    approval_max_hours: float = 72.0
    # The agencies registered with the brokers (each runs an agent and is asked in
    # lookups): when named, the broker takes them from the signed bundle, so an agency is
    # registered or withdrawn by signing a bundle, without a restart (mash/broker/registration.py).
    agents: tuple[str, ...] = ()

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"agencies": self.agencies, "purposes": self.purposes,
                               "roles": list(self.roles)}
        if self.agents:
            out["agents"] = list(self.agents)
        if self.approval_required:
            out.update(approval_required=list(self.approval_required),
                       approvers={"roles": list(self.approver_roles)},
                       approval_max_hours=self.approval_max_hours)
        return out


# -- the files, read by pydantic models (mash.config): plain values, one-line errors ---------


def _specs(value: Any) -> Any:
    """A mapping of named sections (`name:` with nothing under it: an empty section)."""
    if not isinstance(value, Mapping):
        raise Invalid(f"expected a mapping, got {type(value).__name__}")
    return {str(k): {} if v is None else v for k, v in value.items()}


Named = BeforeValidator(_specs)


class PurposeSpec(ConfigModel):
    """federation.yaml `purposes: NAME:`."""

    title: Text | None = None  # default: the name
    stages: TextList


class Approvers(ConfigModel):
    """federation.yaml `approvers:`."""

    roles: TextList = ["supervisor"]


class FederationFile(ConfigModel):
    """policies/federation.yaml."""

    agencies: AnyMapping
    purposes: Annotated[dict[str, PurposeSpec], Named]
    roles: TextList
    approval_required: TextList = []
    approvers: Approvers = Approvers()
    approval_max_hours: Annotated[float, BeforeValidator(number(0.1, 24 * 31))] = 72.0
    agents: TextList = []

    @model_validator(mode="after")
    def _consistent(self) -> FederationFile:
        stages = {s for spec in self.purposes.values() for s in spec.stages}
        for stage in self.approval_required:
            if stage not in stages:
                raise Invalid(f"{stage!r} is not a stage of any purpose "
                              f"(known: {', '.join(sorted(stages))})", key="approval_required")
        for role in self.approvers.roles:
            if role not in self.roles:
                raise Invalid(f"{role!r} is not one of the roles ({', '.join(self.roles)})",
                              key="approvers: roles")
        agencies = {str(k) for k in self.agencies}
        for agency in self.agents:
            try:
                check_agency_id(agency)
            except IdentityError as exc:
                raise Invalid(str(exc), key="agents") from None
            if agency not in agencies:
                raise Invalid(f"{agency!r} is not one of the agencies "
                              f"({', '.join(sorted(agencies))})", key="agents")
        if len(set(self.agents)) != len(self.agents):
            raise Invalid("an agency is named twice", key="agents")
        return self


def load_federation(path: Path) -> Federation:
    try:
        top = load_model(FederationFile, path)
    except ConfigError as exc:
        raise AgreementError(str(exc)) from None
    purposes = {name: {"title": spec.title or name, "stages": spec.stages}
                for name, spec in top.purposes.items()}
    return Federation({str(k): str(v) for k, v in top.agencies.items()}, purposes,
                      tuple(top.roles), tuple(top.approval_required),
                      tuple(top.approvers.roles), top.approval_max_hours, tuple(top.agents))


def _date(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise Invalid(f"{value!r} is not a date like 2026-04-01") from None


Date = Annotated[str, BeforeValidator(_date)]


@dataclass
class Agreement:
    """One MoU, compiled: `data` is what the Rego library reads."""

    path: Path
    data: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.data["id"])

    def fields_released_by(self, owner: str) -> set[str]:
        names: set[str] = set()
        for grant in self.data["grants"]:
            if grant["owner"] != owner:
                continue
            for purpose in grant["purposes"].values():
                for stage in purpose["stages"].values():
                    names |= set(stage["release"])
            names |= {c["field"] for c in grant["withhold_when"]}
        return names


def _field_name(name: str) -> str:
    if not FIELD.match(name):
        raise Invalid("field names are lower_case_with_underscores")
    return name


FieldName = Annotated[Text, AfterValidator(_field_name)]


def _release(value: Any) -> dict[str, dict[str, Any]]:
    """`release:`: field -> transform (a name, or {transform: NAME, its parameters})."""
    if not isinstance(value, Mapping):
        raise Invalid(f"expected a mapping, got {type(value).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for name, rule in value.items():
        if not isinstance(name, str) or not FIELD.match(name):
            raise Invalid("field names are lower_case_with_underscores", key=str(name))
        if isinstance(rule, str):
            rule = {"transform": rule}
        if not isinstance(rule, dict) or "transform" not in rule:
            raise Invalid("give a transform, e.g. keep, month, district", key=name)
        params = {k: v for k, v in rule.items() if k != "transform"}
        try:
            transforms.validate_params(str(rule["transform"]), params, _HERE)
        except ConfigError as exc:
            raise Invalid(str(exc).removeprefix(f"{_HERE}: "), key=name) from None
        out[name] = {"transform": str(rule["transform"]), "params": params}
    return out


_HERE = "\0"  # where validate_params names, stripped: the error's location says where


def _values(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise Invalid(f"expected a list, got {type(value).__name__}")
    return [str(v) for v in value]


class StageGrant(ConfigModel):
    """A grant's `purposes: P: stages: S:`."""

    answer: Annotated[str, BeforeValidator(one_of(*ANSWERS))] = "known"
    release: Annotated[dict[str, dict[str, Any]], BeforeValidator(_release)] = {}


class PurposeGrant(ConfigModel):
    """A grant's `purposes: P:`."""

    lawful_basis: AnyMapping = {}
    stages: Annotated[dict[str, StageGrant], Named]

    @model_validator(mode="after")
    def _shape(self) -> PurposeGrant:
        unknown = set(self.lawful_basis) - set(BASIS_KEYS)
        if unknown:
            raise Invalid(f"unknown key(s) {', '.join(sorted(map(str, unknown)))} "
                          f"(known: {', '.join(BASIS_KEYS)})", key="lawful_basis")
        if not self.stages:
            raise Invalid("name at least one stage", key="stages")
        return self


class Withhold(ConfigModel):
    """A grant's `withhold_when:` entry."""

    field: FieldName
    equals: Annotated[list[str], BeforeValidator(_values)]
    reason: Text


class Grant(ConfigModel):
    """One of an agreement's `grants:`."""

    owner: Text
    requester: Text
    roles: TextList
    withhold_when: list[Withhold] = []
    purposes: Annotated[dict[str, PurposeGrant], Named]

    def check(self, fed: Federation, parties: list[str]) -> None:
        """Against the federation and the agreement's parties (Invalid names the key)."""
        for key, agency in (("owner", self.owner), ("requester", self.requester)):
            if agency not in parties:
                raise Invalid(f"{agency!r} is not a party to this agreement", key=key)
        if self.owner == self.requester:
            raise Invalid("an agency does not need an agreement with itself", key="requester")
        if set(self.roles) - set(fed.roles) or not self.roles:
            raise Invalid(f"name roles from {', '.join(fed.roles)}", key="roles")
        for purpose, spec in self.purposes.items():
            if purpose not in fed.purposes:
                raise Invalid(f"unknown purpose (known: {', '.join(fed.purposes)})",
                              key=f"purposes: {purpose}")
            allowed = fed.purposes[purpose]["stages"]
            for stage in spec.stages:
                if stage not in allowed:
                    raise Invalid(f"unknown stage for {purpose} (known: {', '.join(allowed)})",
                                  key=f"purposes: {purpose}: stages: {stage}")

    def data(self) -> dict[str, Any]:
        return {
            "owner": self.owner, "requester": self.requester, "roles": self.roles,
            "withhold_when": [{"field": w.field, "equals": w.equals, "reason": w.reason}
                              for w in self.withhold_when],
            "purposes": {purpose: {
                "lawful_basis": {str(k): str(v).strip() for k, v in spec.lawful_basis.items()
                                 if str(v).strip()},
                "stages": {stage: {"answer": s.answer, "release": s.release}
                           for stage, s in spec.stages.items()},
            } for purpose, spec in self.purposes.items()},
        }


def _agreement_id(value: str) -> str:
    if not ID.match(value):
        raise Invalid("use lower-case letters, digits and hyphens")
    return value


class AgreementFile(ConfigModel):
    """policies/mous/*.yaml, checked against the federation (the context's `federation`)."""

    id: Annotated[Text, AfterValidator(_agreement_id)]
    title: Text
    version: Text = "1"
    parties: TextList
    valid_from: Date
    review_by: Date
    expires: Date
    retention_days: Annotated[int, BeforeValidator(whole(1, 36500))] = 730
    grants: list[Grant]

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> AgreementFile:
        fed = (info.context or {}).get("federation")
        if not isinstance(fed, Federation):
            return self  # built in code: nothing to check against
        unknown = set(self.parties) - set(fed.agencies)
        if unknown:
            raise Invalid(f"not in policies/federation.yaml: {', '.join(sorted(unknown))}",
                          key="parties")
        if not self.valid_from < self.expires:
            raise Invalid("must be after valid_from", key="expires")
        if not self.valid_from <= self.review_by <= self.expires:
            raise Invalid("must fall between valid_from and expires", key="review_by")
        if not self.grants:
            raise Invalid("an agreement must grant something", key="grants")
        for i, grant in enumerate(self.grants):
            try:
                grant.check(fed, self.parties)
            except Invalid as exc:
                raise Invalid(exc.message, key=f"grants[{i}]: {exc.key}") from None
        return self

    def data(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "version": self.version,
            "parties": self.parties, "valid_from": self.valid_from,
            "review_by": self.review_by, "expires": self.expires,
            "retention_days": self.retention_days,
            "grants": [g.data() for g in self.grants],
        }


def load_agreement(path: Path, fed: Federation) -> Agreement:
    try:
        top = load_model(AgreementFile, path, federation=fed)
    except ConfigError as exc:
        raise AgreementError(str(exc)) from None
    agreement = Agreement(path, top.data())
    if path.stem != top.id:
        agreement.warnings.append(f"{path}: file name does not match id {top.id!r}")
    return agreement


def complete_basis(b: dict[str, str]) -> bool:
    """Art 6 with Art 9 and a Schedule 1 condition, or DPA 2018 Part 3 (as agreements.rego)."""
    return bool(b.get("part_3") or (b.get("article_6") and b.get("article_9")
                                    and b.get("schedule_1")))


def lawful_basis_problems(agreement: Agreement) -> list[str]:
    """Grants whose lawful basis is incomplete: they will fail closed at lookup time."""
    problems = []
    for grant in agreement.data["grants"]:
        for purpose, spec in grant["purposes"].items():
            if not complete_basis(spec["lawful_basis"]):
                problems.append(
                    f"{agreement.path}: grant {grant['owner']} -> {grant['requester']} for "
                    f"{purpose}: no complete lawful basis (Art 6 + Art 9 + DPA 2018 Sch 1, or "
                    f"DPA 2018 Part 3); it will share nothing")
    return problems


def date_warnings(agreement: Agreement, today: dt.date) -> list[str]:
    d = agreement.data
    iso = today.isoformat()
    if iso > d["expires"]:
        return [f"{agreement.id}: expired on {d['expires']}: it shares nothing"]
    if iso < d["valid_from"]:
        return [f"{agreement.id}: not in force until {d['valid_from']}"]
    if iso > d["review_by"]:
        return [f"{agreement.id}: review overdue since {d['review_by']}"]
    return []


def load_all(src: Path) -> tuple[Federation, list[Agreement]]:
    """Load policies/federation.yaml and every policies/mous/*.yaml; ids must be unique."""
    fed = load_federation(src / "federation.yaml")
    files = sorted((src / "mous").glob("*.yaml"))
    if not files:
        raise AgreementError(f"{src / 'mous'}: no agreements found")
    agreements = [load_agreement(path, fed) for path in files]
    seen: dict[str, Path] = {}
    for a in agreements:
        if a.id in seen:
            raise AgreementError(f"{a.path}: id {a.id!r} is also used by {seen[a.id]}")
        seen[a.id] = a.path
    return fed, agreements
