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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mash.config import Reader, load_yaml
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


def load_federation(path: Path) -> Federation:
    try:
        top = load_yaml(path)
        agencies = {str(k): str(v) for k, v in top.mapping("agencies").items()}
        purposes: dict[str, dict[str, Any]] = {}
        for name, spec in top.mapping("purposes").items():
            section = Reader(spec or {}, top.label(f"purposes.{name}"), top.base_dir)
            purposes[str(name)] = {"title": section.str("title", str(name)),
                                   "stages": section.str_list("stages")}
            section.done()
        roles = tuple(top.str_list("roles"))
        required = tuple(top.str_list("approval_required", []))
        stages = {s for spec in purposes.values() for s in spec["stages"]}
        for stage in required:
            if stage not in stages:
                raise top.error("approval_required",
                                f"{stage!r} is not a stage of any purpose "
                                f"(known: {', '.join(sorted(stages))})")
        approvers = top.section("approvers", required=False)
        approver_roles = tuple(approvers.str_list("roles", ["supervisor"]))
        approvers.done()
        for role in approver_roles:
            if role not in roles:
                raise top.error("approvers.roles", f"{role!r} is not one of the roles "
                                                   f"({', '.join(roles)})")
        max_hours = top.float("approval_max_hours", 72.0, minimum=0.1, maximum=24 * 31)
        agents = tuple(top.str_list("agents", []))
        for agency in agents:
            try:
                check_agency_id(agency)
            except IdentityError as exc:
                raise top.error("agents", str(exc)) from None
            if agency not in agencies:
                raise top.error("agents", f"{agency!r} is not one of the agencies "
                                          f"({', '.join(sorted(agencies))})")
        if len(set(agents)) != len(agents):
            raise top.error("agents", "an agency is named twice")
        top.done()
    except ConfigError as exc:
        raise AgreementError(str(exc)) from None
    return Federation(agencies, purposes, roles, required, approver_roles, max_hours,
                      agents)


def _date(reader: Reader, key: str) -> str:
    raw = reader.raw(key)
    if isinstance(raw, dt.date):
        return raw.isoformat()
    try:
        return dt.date.fromisoformat(str(raw)).isoformat()
    except ValueError:
        raise reader.error(key, f"{raw!r} is not a date like 2026-04-01") from None


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


def _release(reader: Reader, key: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, rule in reader.mapping(key, {}).items():
        where = reader.label(f"{key}.{name}")
        if not isinstance(name, str) or not FIELD.match(name):
            raise AgreementError(f"{where}: field names are lower_case_with_underscores")
        if isinstance(rule, str):
            rule = {"transform": rule}
        if not isinstance(rule, dict) or "transform" not in rule:
            raise AgreementError(f"{where}: give a transform, e.g. keep, month, district")
        params = {k: v for k, v in rule.items() if k != "transform"}
        try:
            transforms.validate_params(str(rule["transform"]), params, where)
        except ConfigError as exc:
            raise AgreementError(str(exc)) from None
        out[name] = {"transform": str(rule["transform"]), "params": params}
    return out


def _grant(g: Reader, fed: Federation, parties: list[str]) -> dict[str, Any]:
    owner, requester = g.str("owner"), g.str("requester")
    for key, agency in (("owner", owner), ("requester", requester)):
        if agency not in parties:
            raise g.error(key, f"{agency!r} is not a party to this agreement")
    if owner == requester:
        raise g.error("requester", "an agency does not need an agreement with itself")
    roles = g.str_list("roles")
    unknown_roles = set(roles) - set(fed.roles)
    if unknown_roles or not roles:
        raise g.error("roles", f"name roles from {', '.join(fed.roles)}")
    withhold = []
    for w in g.sections("withhold_when", required=False):
        name = w.str("field")
        if not FIELD.match(name):
            raise w.error("field", "field names are lower_case_with_underscores")
        withhold.append({"field": name, "equals": [str(v) for v in w.list("equals")],
                         "reason": w.str("reason")})
        w.done()
    purposes: dict[str, Any] = {}
    for purpose, spec in g.mapping("purposes").items():
        label = g.label(f"purposes.{purpose}")
        if purpose not in fed.purposes:
            raise AgreementError(f"{label}: unknown purpose (known: {', '.join(fed.purposes)})")
        p = Reader(spec or {}, label, g.base_dir)
        basis = p.mapping("lawful_basis", {})
        unknown_basis = set(basis) - set(BASIS_KEYS)
        if unknown_basis:
            raise p.error("lawful_basis", f"unknown key(s) {', '.join(sorted(unknown_basis))} "
                                          f"(known: {', '.join(BASIS_KEYS)})")
        stages: dict[str, Any] = {}
        for stage, stage_spec in p.mapping("stages").items():
            allowed = fed.purposes[purpose]["stages"]
            if stage not in allowed:
                raise p.error(f"stages.{stage}", f"unknown stage for {purpose} "
                                                 f"(known: {', '.join(allowed)})")
            s = Reader(stage_spec or {}, p.label(f"stages.{stage}"), g.base_dir)
            stages[str(stage)] = {"answer": s.str("answer", "known", choices=ANSWERS),
                                  "release": _release(s, "release")}
            s.done()
        if not stages:
            raise p.error("stages", "name at least one stage")
        purposes[str(purpose)] = {
            "lawful_basis": {k: str(v).strip() for k, v in basis.items() if str(v).strip()},
            "stages": stages,
        }
        p.done()
    g.done()
    return {"owner": owner, "requester": requester, "roles": roles, "withhold_when": withhold,
            "purposes": purposes}


def load_agreement(path: Path, fed: Federation) -> Agreement:
    try:
        top = load_yaml(path)
        agreement_id = top.str("id")
        if not ID.match(agreement_id):
            raise top.error("id", "use lower-case letters, digits and hyphens")
        parties = top.str_list("parties")
        unknown = set(parties) - set(fed.agencies)
        if unknown:
            raise top.error("parties", f"not in policies/federation.yaml: "
                                       f"{', '.join(sorted(unknown))}")
        valid_from, review_by, expires = (_date(top, "valid_from"), _date(top, "review_by"),
                                          _date(top, "expires"))
        if not valid_from < expires:
            raise top.error("expires", "must be after valid_from")
        if not valid_from <= review_by <= expires:
            raise top.error("review_by", "must fall between valid_from and expires")
        data = {
            "id": agreement_id,
            "title": top.str("title"),
            "version": top.str("version", "1"),
            "parties": parties,
            "valid_from": valid_from,
            "review_by": review_by,
            "expires": expires,
            "retention_days": top.int("retention_days", 730, minimum=1, maximum=36500),
            "grants": [_grant(g, fed, parties) for g in top.sections("grants")],
        }
        if not data["grants"]:
            raise top.error("grants", "an agreement must grant something")
        top.done()
    except ConfigError as exc:
        raise AgreementError(str(exc)) from None
    agreement = Agreement(path, data)
    if path.stem != agreement_id:
        agreement.warnings.append(f"{path}: file name does not match id {agreement_id!r}")
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
