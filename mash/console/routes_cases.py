"""The case pages: GET /cases lists the analyst's kept cases and the form to open one; POST
/cases checks the whole case by the rules of `mash case run` (mash/cases/casefile.py), asks
the broker about every person with the analyst's own token, stores the picture and shows it;
GET /cases/{id} reopens it from the store (audited first, nothing asked again), and
/cases/{id}/export.json and export.pdf give it for the case record (audited too); the page
prints; POST /cases/{id}/ask-again asks the agencies still NOT CHECKED once more and keeps
their later answers, and POST /cases/{id}/live is the open page's poll. Pages only where
console.yaml has a `cases:` section.
"""

from __future__ import annotations

import base64
import datetime as dt
import json

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from mash.cases.casefile import CaseFileError, check_case
from mash.cases.model import RELATIONSHIPS
from mash.cases.picture import still_to_ask
from mash.cases.run import CaseLookupError, run_case_with
from mash.cases.store import CaseStoreError, StoredCase
from mash.console import csrf
from mash.console.broker_client import Broker
from mash.console.case_follow_up import CaseFollowUp
from mash.console.case_pdf import case_pdf
from mash.console.cases import (
    FORM_PEOPLE,
    LABELS,
    LOOKUP,
    REQUESTS,
    case_data,
    field_errors,
    form_error,
    grid,
    is_case_id,
    live_grid,
    reopen_case,
    signable,
    waiting_of,
)
from mash.console.ig import stage_purposes
from mash.console.pages import Pages, Refused
from mash.console.sessions import Session
from mash.console.views import rag_timer
from mash.logs import get_logger

log = get_logger(__name__)


def _name(stored: StoredCase) -> str:
    """The case reference as a file name's part."""
    return "".join(c if c.isalnum() or c in "-_" else "_"
                   for c in str(stored.header.get("reference", "case")))


def add_case_routes(app: FastAPI, *, pages: Pages, broker: Broker,
                    follow_ups: CaseFollowUp) -> None:
    """Add the case pages, kept in `follow_ups.store` (`cases:` in console.yaml)."""
    cfg = pages.cfg
    store = follow_ups.store
    app.state.cases_enabled = True  # base.html offers the page
    log.info("cases_purged", deleted=store.purge())

    def page(request: Request, session: Session, status: int = 200, error: str = "",
             values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
             general: list[str] | None = None) -> HTMLResponse:
        cases = [c for c in store.cases_of(session.analyst.subject)
                 if c.header.get("kind") != LOOKUP]
        links = []
        for name, message in (errors or {}).items():
            row, _, key = name.partition("-")
            if key:  # p1-dob: Person 2: Date of birth
                links.append((name, f"Person {int(row[1:]) + 1}: {LABELS[key]}", message))
            else:
                links.append((f"c-{name}", LABELS[name], message))
        offered = pages.purposes()
        return pages.render(request, "cases.html", session, status=status, error=error,
                            errors=errors or {}, general=general or [], error_links=links,
                            purposes=offered, stage_purposes=stage_purposes(offered),
                            values=values or {"urgency": "amber"}, cases=cases,
                            relationships=RELATIONSHIPS, rows=range(FORM_PEOPLE),
                            labels=LABELS,
                            retention_days=store.retention / dt.timedelta(days=1))

    @app.get("/cases", response_class=HTMLResponse)
    def cases_page(request: Request) -> HTMLResponse:
        return page(request, pages.need_lookups(request))

    @app.post("/cases", response_class=HTMLResponse)
    async def open_case(request: Request) -> Response:
        session = pages.need_lookups(request)
        form = await csrf.checked_form(request, session)
        errors, general = field_errors(form, pages.purposes())
        if errors or general:
            return page(request, session, 422, values=form, errors=errors, general=general)
        data = case_data(form)
        try:  # the rules of the whole case (one child, at most so many people...)
            case, requests = check_case(data, form_error(data))
        except CaseFileError as exc:
            return page(request, session, 422, values=form, general=[str(exc)])
        signable(session)
        try:
            picture = await run_in_threadpool(
                lambda: run_case_with(ask=lambda r: broker.lookup(session, r), case=case,
                                      requests=requests))
        except CaseLookupError as exc:
            code = exc.error.code()
            log.warning("case_lookup_failed", code=code.name)
            return page(request, session, 502, f"The broker refused a lookup: {exc}", form)
        kept = picture.to_dict()
        # revision, waiting and agencies: what the live page's poll reads without reopening
        header = {"reference": case.reference, "purpose": case.purpose, "stage": case.stage,
                  "urgency": case.urgency, "people": len(case.people), "revision": 0,
                  "waiting": waiting_of(kept), "agencies": [a["id"] for a in kept["agencies"]]}
        # the questions, sealed with the answers, so that later answers can be asked for
        kept[REQUESTS] = [base64.b64encode(r.SerializeToString()).decode() for r in requests]
        try:
            stored = await run_in_threadpool(
                lambda: store.save(owner=session.analyst.subject, header=header,
                                   picture=kept))
        except CaseStoreError as exc:
            raise Refused(503, f"The answers came back but could not be kept: {exc}") from None
        log.info("case_stored", case_id=stored.case_id, people=len(case.people),
                 not_checked=picture.not_checked)
        return RedirectResponse(f"/cases/{stored.case_id}", status_code=303)

    @app.get("/cases/{case_id}/export.json")
    def export_case(request: Request, case_id: str) -> Response:
        """The family picture for the local authority's case record (reopening: audited)."""
        stored, picture = reopen_case(store, pages.need_lookups(request), case_id, "json")
        record = {k: v for k, v in picture.items() if k != REQUESTS}
        body = json.dumps({"case_id": stored.case_id, "stored_at": stored.stored_at.isoformat(),
                           "kept_until": stored.expires_at.isoformat(), **record},
                          indent=2, sort_keys=True, ensure_ascii=False)
        return Response(body, media_type="application/json", headers={
            "Content-Disposition": f'attachment; filename="family-picture-{_name(stored)}.json"'})

    @app.get("/cases/{case_id}/export.pdf")
    def export_pdf(request: Request, case_id: str) -> Response:
        """The family picture as a PDF for the case record (reopening: audited)."""
        session = pages.need_lookups(request)
        stored, picture = reopen_case(store, session, case_id, "pdf")
        timer = rag_timer(str(stored.header.get("urgency", "amber")), stored.stored_at,
                          cfg.rag_hours)
        body = case_pdf(header=stored.header, picture=picture, case_id=stored.case_id,
                        due_at=timer.due_at, stored_at=stored.stored_at,
                        kept_until=stored.expires_at, generated_by=session.analyst.subject)
        return Response(body, media_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="family-picture-{_name(stored)}.pdf"'})

    @app.post("/cases/{case_id}/ask-again")
    async def ask_again(request: Request, case_id: str) -> Response:
        """Ask again the agencies still NOT CHECKED (offline, timed out...), person by
        person, and keep their later answers in the picture; no agreement is not asked."""
        session = pages.need_lookups(request)
        await csrf.checked_form(request, session)
        stored, picture = await run_in_threadpool(
            lambda: reopen_case(store, session, case_id, "refresh"))
        await follow_ups.ask_later(session, stored, picture)
        return RedirectResponse(f"/cases/{case_id}", status_code=303)

    @app.post("/cases/{case_id}/live")
    async def live(request: Request, case_id: str) -> Response:
        """The open case page's poll: follows up (CaseFollowUp.follow_up), then answers
        {"changed": false} if nothing is newer than the page's revision (the header alone is
        read: not a reopening), else the grid as JSON (a reopening, audited)."""
        session = pages.need_lookups(request)
        form = await csrf.checked_form(request, session)
        since = form.get("since", "")
        if not since.isdigit() or not is_case_id(case_id):
            raise Refused(404, "There is no such case.")
        async with follow_ups.one_at_a_time(case_id):
            try:
                stored = await run_in_threadpool(store.header_of, case_id,
                                                 session.analyst.subject)
            except CaseStoreError as exc:
                raise Refused(404, str(exc)) from None
            if stored.header.get("kind") == LOOKUP:
                raise Refused(404, "There is no such case.")
            followed = await follow_ups.follow_up(session, stored)
        if followed is not None:
            stored, picture = followed
        else:
            revision = int(stored.header.get("revision", 0))
            if revision == int(since):
                return JSONResponse({"revision": revision, "changed": False})
            stored, picture = await run_in_threadpool(
                lambda: reopen_case(store, session, case_id, "live"))
        return JSONResponse({"revision": int(stored.header.get("revision", 0)),
                             "changed": True, "can_ask": bool(waiting_of(picture)),
                             **live_grid(picture)})

    @app.get("/cases/{case_id}", response_class=HTMLResponse)
    def show_case(request: Request, case_id: str) -> HTMLResponse:
        session = pages.need_lookups(request)
        stored, picture = reopen_case(store, session, case_id, "html")
        urgency = str(stored.header.get("urgency", "amber"))
        timer = rag_timer(urgency, stored.stored_at, cfg.rag_hours)
        can_ask = any(still_to_ask(p) for p in picture["people"]) and REQUESTS in picture
        return pages.render(request, "case.html", session, stored=stored,
                            picture=grid(picture), timer=timer, can_ask=can_ask,
                            revision=int(stored.header.get("revision", 0)),
                            live_seconds=cfg.cases.live_poll_seconds if cfg.cases else 15)

