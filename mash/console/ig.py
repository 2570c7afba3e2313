"""The IG lead's pages: agreements in force, and what each agency releases to whom and why."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mash.policy.decisions import LoadedPolicy
from mash.policy.explain import Explanation, explain, headline
from mash.policy.model import Requester
from mash.policy.store import PolicyStore

REVIEW_SOON_DAYS = 60
def policy(store: PolicyStore | None) -> LoadedPolicy | None:
    """The signed bundle in force (re-read when it changed on disk), or None."""
    if store is None:
        return None
    store.reload()
    return store.current


def lookup_roles(loaded: LoadedPolicy) -> set[str]:
    """The roles some agreement's grant lets look people up."""
    return {role for a in loaded.bundle.agreements.values() for g in a["grants"]
            for role in g.get("roles", ())}


@dataclass(frozen=True)
class AgreementRow:
    id: str
    title: str
    parties: list[str]
    valid_from: str
    review_by: str
    expires: str
    status: str  # in-force, review-soon, review-overdue, expired, not-yet
    status_text: str
    grants: list[str]


def _status(data: dict[str, Any], today: dt.date) -> tuple[str, str]:
    iso = today.isoformat()
    if iso > data["expires"]:
        return "expired", f"EXPIRED on {data['expires']}: shares nothing"
    if iso < data["valid_from"]:
        return "not-yet", f"not in force until {data['valid_from']}"
    if iso > data["review_by"]:
        return "review-overdue", f"REVIEW OVERDUE since {data['review_by']}"
    review = dt.date.fromisoformat(data["review_by"])
    if (review - today).days <= REVIEW_SOON_DAYS:
        return "review-soon", f"review due within {(review - today).days} days"
    return "in-force", "in force"


def agreement_rows(loaded: LoadedPolicy, today: dt.date) -> list[AgreementRow]:
    rows = []
    for agreement_id, data in sorted(loaded.bundle.agreements.items()):
        status, text = _status(data, today)
        grants = [f"{g['owner']} → {g['requester']}: {', '.join(sorted(g['purposes']))}"
                  for g in data["grants"]]
        rows.append(AgreementRow(agreement_id, data["title"], list(data["parties"]),
                                 data["valid_from"], data["review_by"], data["expires"],
                                 status, text, grants))
    order = {"expired": 0, "review-overdue": 1, "review-soon": 2, "not-yet": 3, "in-force": 4}
    return sorted(rows, key=lambda r: (order[r.status], r.id))


@dataclass(frozen=True)
class Choices:
    agencies: dict[str, str]
    purposes: dict[str, dict[str, Any]]
    roles: list[str]


def choices(loaded: LoadedPolicy) -> Choices:
    fed = loaded.bundle.federation
    return Choices(dict(fed["agencies"]), dict(fed["purposes"]), list(fed["roles"]))


def stage_purposes(purposes: Mapping[str, Iterable[str]] | None) -> dict[str, list[str]]:
    """Each stage and the purposes it belongs to, for the forms that offer only the chosen
    purpose's stages (the lookup, case and explain pages)."""
    out: dict[str, list[str]] = {}
    for name, stages in (purposes or {}).items():
        for stage in stages:
            out.setdefault(stage, []).append(name)
    return out


def check_choice(c: Choices, purpose: str, stage: str, requester: str, role: str,
                 owner: str) -> dict[str, str]:
    errors = {}
    if purpose not in c.purposes:
        errors["purpose"] = "choose a purpose"
    elif stage not in c.purposes[purpose]["stages"]:
        errors["stage"] = f"choose a stage of this purpose: " \
                          f"{', '.join(c.purposes[purpose]['stages'])}"
    if requester not in c.agencies:
        errors["requester"] = "choose the requesting agency"
    if role not in c.roles:
        errors["role"] = "choose a role"
    if owner and owner not in c.agencies:
        errors["owner"] = "choose a data owner, or all"
    return errors


@dataclass(frozen=True)
class OwnerExplanation:
    owner: str
    owner_name: str
    headline: str
    explanation: Explanation


def explain_all(loaded: LoadedPolicy, purpose: str, stage: str, requester: str, role: str,
                owner: str, today: dt.date) -> list[OwnerExplanation]:
    agencies = loaded.bundle.federation["agencies"]
    owners = [owner] if owner else [a for a in sorted(agencies) if a != requester]
    who = Requester(requester, role, purpose, stage)
    out = []
    for name in owners:
        fields = loaded.bundle.released_fields(name) | loaded.bundle.condition_fields(name)
        result = explain(loaded, name, who, today, fields)
        # the same words as `mash policy explain` (mash.policy.explain.headline)
        out.append(OwnerExplanation(name, agencies.get(name, name), headline(result), result))
    return out
