"""Looking a person up: the lookup form and its result, the session's lookups with their
RAG timers (and, with `cases:` in console.yaml, the results kept there reopened, audited,
without asking again), and the agencies' agents as the broker sees them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from mash.audit.errors import AuditError
from mash.cases.store import CaseStoreError
from mash.console import csrf, ig
from mash.console.broker_client import GRPC_MESSAGES, Broker, in_thread
from mash.console.cases import KeptLookups, is_case_id
from mash.console.forms import LABELS, LookupForm, validate
from mash.console.pages import Pages, Refused
from mash.console.sessions import LookupRecord, Session, UnsignedSession
from mash.console.views import agents_view, lookup_view, rag_timer, summary
from mash.logs import get_logger

log = get_logger(__name__)


def add_lookup_routes(app: FastAPI, *, pages: Pages, broker: Broker,
                      kept: KeptLookups | None) -> None:
    cfg = pages.cfg
    sessions = pages.sessions

    def signed_out(session: Session, code: grpc.StatusCode) -> None:
        """The broker no longer accepts this token (revoked, or its key rotated): end the
        session rather than fail every page."""
        if code == grpc.StatusCode.UNAUTHENTICATED:
            sessions.end(session)
            raise Refused(401, GRPC_MESSAGES[code])

    def lookup_page(request: Request, session: Session, form: LookupForm, status: int = 200,
                    **context: Any) -> HTMLResponse:
        offered = pages.purposes()
        return pages.render(request, "lookup.html", session, status=status, form=form,
                            labels=LABELS, purposes=offered,
                            stage_purposes=ig.stage_purposes(offered), about=form.about(),
                            rag_hours=cfg.rag_hours, **context)

    @app.get("/lookup", response_class=HTMLResponse)
    def lookup_form(request: Request) -> HTMLResponse:
        session = pages.need(request)
        return lookup_page(request, session, LookupForm.blank(),
                           not_offered=not pages.may_look_up(session))

    @app.post("/lookup", response_class=HTMLResponse)
    async def lookup(request: Request) -> HTMLResponse:
        session = pages.need_lookups(request)
        form = LookupForm.from_post(await csrf.checked_form(request, session))
        lookup_request = validate(form, pages.purposes())
        if lookup_request is None:
            return lookup_page(request, session, form, status=422)
        try:
            response = await in_thread(broker.lookup, session, lookup_request)
        except UnsignedSession as exc:  # a bound token without its key: never sent unsigned
            log.warning("lookup_refused", reason=str(exc))
            sessions.end(session)
            raise Refused(401, f"The lookup was not sent: {exc}") from None
        except grpc.RpcError as exc:
            code = exc.code()
            log.warning("lookup_failed", code=code.name)
            signed_out(session, code)
            message = GRPC_MESSAGES.get(code)
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                message = f"The broker refused the request: {exc.details()}"
            if code == grpc.StatusCode.FAILED_PRECONDITION:  # a stage approval missing/refused
                form.error("approval", f"{exc.details()}")
                return lookup_page(request, session, form, status=422)
            form.general.append(message or f"The lookup failed ({code.name.lower()}).")
            return lookup_page(request, session, form, status=502)
        view = lookup_view(response)
        urgency = form.values["urgency"].lower()
        asked = dt.datetime.now(dt.UTC)
        if response.HasField("asked_at"):
            asked = response.asked_at.ToDatetime(dt.UTC)
        timer = rag_timer(urgency, asked, cfg.rag_hours)
        sessions.record(session, LookupRecord(
            response.lookup_id, form.values["case"], form.values["purpose"],
            form.values["stage"], urgency, timer.asked_at, timer.due_at, summary(view)))
        log.info("lookup_answered", lookup_id=response.lookup_id, urgency=urgency,
                 due_at=timer.due_at.isoformat(), answers=view.counts)
        not_kept = ""
        if kept is not None:
            try:
                await in_thread(kept.save, session.analyst.subject, form.values, response)
            except CaseStoreError as exc:
                log.error("lookup_not_kept", lookup_id=response.lookup_id, reason=str(exc))
                not_kept = str(exc)
        return lookup_page(request, session, form, result=view, timer=timer,
                           not_kept=not_kept)

    @app.get("/lookups", response_class=HTMLResponse)
    def history(request: Request) -> HTMLResponse:
        session = pages.need_lookups(request)
        timers = [(r, rag_timer(r.urgency, r.asked_at, cfg.rag_hours))
                  for r in session.lookups]
        stored = kept.kept_of(session.analyst.subject) if kept is not None else []
        ids = {str(c.header.get("lookup_id")): c.case_id for c in stored}
        in_session = {r.lookup_id for r in session.lookups}
        earlier = [(c, rag_timer(str(c.header.get("urgency") or "amber"), c.stored_at,
                                 cfg.rag_hours))
                   for c in stored if c.header.get("lookup_id") not in in_session]
        return pages.render(request, "history.html", session, timers=timers, kept_ids=ids,
                            keeping=kept is not None, earlier=earlier)

    @app.get("/lookups/{kept_id}", response_class=HTMLResponse)
    def reopen_lookup(request: Request, kept_id: str) -> HTMLResponse:
        """A kept result, from the store: the reopening is audited first, nothing is asked
        again."""
        session = pages.need_lookups(request)
        if kept is None or not is_case_id(kept_id):
            raise Refused(404, "There is no such lookup kept.")
        try:
            stored, values, response = kept.reopen(kept_id, session.analyst)
        except CaseStoreError as exc:
            raise Refused(404, str(exc)) from None
        except AuditError:
            raise Refused(503, "This result cannot be shown: reopening it could not be "
                               "recorded in the audit trail.") from None
        log.info("lookup_reopened", lookup_id=response.lookup_id, by=session.analyst.subject)
        form = LookupForm.from_post(values)
        asked = (response.asked_at.ToDatetime(dt.UTC) if response.HasField("asked_at")
                 else stored.stored_at)
        timer = rag_timer(form.values["urgency"].lower() or "amber", asked, cfg.rag_hours)
        return lookup_page(request, session, form, result=lookup_view(response), timer=timer,
                           reopened=stored)

    @app.get("/agents", response_class=HTMLResponse)
    async def agents(request: Request) -> HTMLResponse:
        session = pages.need(request)
        try:
            response = await in_thread(broker.agents, session)
        except UnsignedSession as exc:
            sessions.end(session)
            raise Refused(401, f"The broker was not asked: {exc}") from None
        except grpc.RpcError as exc:
            code = exc.code()
            signed_out(session, code)
            raise Refused(502, GRPC_MESSAGES.get(code, f"The broker refused: {code.name}")) \
                from None
        return pages.render(request, "agents.html", session, agents=agents_view(response),
                            checked_at=dt.datetime.now(dt.UTC))
