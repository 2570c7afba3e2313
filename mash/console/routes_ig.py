"""The information governance lead's pages: the agreements in force, what each agency
releases to whom and why, and searching the audit trail."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from mash.audit.report import Criteria, Found, search
from mash.audit.search_terms import search_criteria
from mash.audit.store import AuditStore
from mash.audit.subject_hash import SubjectHasher
from mash.console import csrf, ig
from mash.console.broker_client import in_thread
from mash.console.pages import Pages, Refused
from mash.errors import MashError, ValidationError
from mash.logs import get_logger

log = get_logger(__name__)
AUDIT_FIELDS = ("nhs", "upn", "pnc", "name", "dob", "case", "requester", "since", "until")


class AuditAccess(Protocol):
    """console.yaml's `audit:` as this page uses it (read-only)."""

    @property
    def hasher(self) -> SubjectHasher: ...

    def open_store(self) -> AuditStore: ...


def audit_search(audit: AuditAccess, criteria: Criteria) -> list[Found]:
    with audit.open_store() as store:
        return search(store, criteria, audit.hasher, limit=200)


def add_ig_routes(app: FastAPI, *, pages: Pages) -> None:
    cfg = pages.cfg

    @app.get("/agreements", response_class=HTMLResponse)
    def agreements(request: Request) -> HTMLResponse:
        session = pages.need_ig(request)
        policy = pages.loaded_policy()
        today = dt.datetime.now(dt.UTC).date()
        return pages.render(request, "agreements.html", session, policy=policy, today=today,
                            rows=ig.agreement_rows(policy, today))

    @app.get("/explain", response_class=HTMLResponse)
    def explain(request: Request, purpose: str = "", stage: str = "", requester: str = "",
                role: str = "analyst", owner: str = "") -> HTMLResponse:
        session = pages.need_ig(request)
        policy = pages.loaded_policy()
        choices = ig.choices(policy)
        errors: dict[str, str] = {}
        tables: list[ig.OwnerExplanation] = []
        requester = requester or session.analyst.agency
        if purpose or stage:
            errors = ig.check_choice(choices, purpose, stage, requester, role, owner)
            if not errors:
                tables = ig.explain_all(policy, purpose, stage, requester, role, owner,
                                        dt.datetime.now(dt.UTC).date())
        return pages.render(request, "explain.html", session, choices=choices, errors=errors,
                            tables=tables, stage_purposes=ig.stage_purposes(
                                {p: v["stages"] for p, v in choices.purposes.items()}),
                            chosen={"purpose": purpose, "stage": stage,
                                    "requester": requester, "role": role, "owner": owner})

    @app.get("/audit", response_class=HTMLResponse)
    def audit_form(request: Request) -> HTMLResponse:
        session = pages.need_ig(request)
        return pages.render(request, "audit.html", session, values={}, found=None, error="")

    @app.post("/audit", response_class=HTMLResponse)
    async def audit_page(request: Request) -> HTMLResponse:
        session = pages.need_ig(request)
        data = await csrf.checked_form(request, session)
        audit = cfg.audit
        if audit is None:
            raise Refused(503, "This console has no audit store configured (audit: in "
                               "console.yaml).")
        values = {k: data.get(k, "").strip() for k in AUDIT_FIELDS}
        found: list[Found] | None = None
        error = ""
        try:
            criteria = search_criteria(
                nhs_number=values["nhs"], upn=values["upn"], pnc_id=values["pnc"],
                names=[values["name"]] if values["name"] else [],
                date_of_birth=values["dob"], case_reference=values["case"],
                requester=values["requester"], since=values["since"], until=values["until"])
            if not (criteria.subject or criteria.case_reference or criteria.requester):
                raise ValidationError("say what to search for: an identifier, a name with the "
                                      "date of birth, a case reference or an analyst")
            hits = await in_thread(audit_search, audit, criteria)
            found = hits
            log.info("audit_searched", by=session.analyst.subject, hits=len(hits),
                     criteria=sorted(criteria.describe()))
        except (ValidationError, MashError) as exc:
            error = str(exc)
        return pages.render(request, "audit.html", session, values=values, found=found,
                            error=error, status=422 if error else 200)
