"""The console's cases: open a case, look up its people under its context, keep the family
picture (encrypted, for the retention in console.yaml) and show it as a grid.

GET /cases lists the analyst's kept cases and the form to open one; POST /cases checks the
whole case by the rules of `mash case run` (mash/cases/casefile.py), asks the broker about
every person with the analyst's own token, stores the picture and shows it; GET
/cases/{id} reopens it from the store (audited first, nothing asked again), and
/cases/{id}/export.json and export.pdf give it for the case record (audited too); the page
prints; POST
/cases/{id}/ask-again asks the agencies still NOT CHECKED once more and keeps their later
answers. Pages only where console.yaml has a `cases:` section.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from mash.audit.errors import AuditError
from mash.cases.casefile import CaseFileError, check_case, key_of
from mash.cases.model import RELATIONSHIPS
from mash.cases.picture import STATE_SYMBOLS, STATE_WORDS, merge_later, still_to_ask
from mash.cases.run import CaseLookupError, run_case_with
from mash.cases.store import CaseStore, CaseStoreError, StoredCase
from mash.console.case_pdf import case_pdf
from mash.console.config import ConsoleConfig
from mash.console.forms import TEXT_FIELDS, LookupForm, validate
from mash.console.ig import stage_purposes
from mash.console.sessions import Session, UnsignedSession
from mash.console.views import rag_timer
from mash.logs import get_logger
from mash.v1 import lookup_pb2
from mash.yamlfile import Location

log = get_logger(__name__)
REQUESTS = "requests"  # the stored picture's sealed questions (never exported or shown)
FORM_PEOPLE = 6  # person rows on the form; a case file takes up to 30
CASE_FIELDS = ("reference", "purpose", "stage", "urgency", "reason")
PERSON_FIELDS = ("relationship", "name", "dob", "postcode", "nhs")
LABELS = {"reference": "Case reference", "purpose": "Purpose", "stage": "Stage",
          "urgency": "Urgency", "reason": "Why the household is looked up",
          "relationship": "Relationship to the child", "name": "Full name",
          "dob": "Date of birth", "postcode": "Postcode", "nhs": "NHS number"}
FOLLOW_UP_EVERY = dt.timedelta(minutes=5)  # the live page asks an agency again at most so often
STATE_CLASSES = {"KNOWN": "known", "NOT_KNOWN": "not-known", "WITHHELD": "withheld",
                 "NOT_CHECKED": "not-checked"}


def case_data(form: dict[str, str]) -> dict[str, Any]:
    """The form as a case file's data: people are the rows with anything typed in them."""
    data: dict[str, Any] = {k: form.get(k, "").strip() for k in CASE_FIELDS}
    people = []
    for i in range(FORM_PEOPLE):
        row = {k: form.get(f"p{i}-{k}", "").strip() for k in PERSON_FIELDS}
        if not any(v for k, v in row.items() if k != "relationship"):
            continue
        person: dict[str, Any] = {"relationship": row["relationship"] or "other"}
        for key in ("name", "dob", "nhs"):
            if row[key]:
                person[key] = row[key]
        if row["postcode"]:
            person["postcodes"] = [row["postcode"]]
        people.append(person)
    data["people"] = people
    return data


# the lookup form's names for the case form's fields
_CASE_KEYS = {"purpose": "purpose", "stage": "stage", "case": "reference",
              "reason": "reason", "urgency": "urgency"}
_PERSON_KEYS = {"name": "name", "aliases": "name", "dob": "dob", "postcodes": "postcode",
                "nhs": "nhs", "sex": "name"}


def field_errors(form: dict[str, str],
                 purposes: dict[str, list[str]] | None) -> tuple[dict[str, str], list[str]]:
    """Every field of the case form checked at once, each on its own, by the lookup form's
    rules (mash.subject, mash.context: the broker's): messages by field ("stage",
    "p1-dob"...) and those that belong to no one field."""
    errors: dict[str, str] = {}
    general: list[str] = []
    context = {"purpose": form.get("purpose", ""), "stage": form.get("stage", ""),
               "case": form.get("reference", ""), "reason": form.get("reason", ""),
               "urgency": form.get("urgency", "")}
    rows = [i for i in range(FORM_PEOPLE)
            if any(form.get(f"p{i}-{k}", "").strip() for k in PERSON_FIELDS
                   if k != "relationship")]
    if not rows:
        errors["p0-name"] = "add the child the referral is about: a name and date of birth"
    for n, i in enumerate(rows or [-1]):
        values = dict.fromkeys(TEXT_FIELDS, "") | context
        if i >= 0:
            values |= {"name": form.get(f"p{i}-name", ""), "dob": form.get(f"p{i}-dob", ""),
                       "postcodes": form.get(f"p{i}-postcode", ""),
                       "nhs": form.get(f"p{i}-nhs", "")}
        checked = LookupForm.from_post(values)
        validate(checked, purposes)
        for key, message in checked.errors.items():
            if key in _CASE_KEYS:
                if n == 0:
                    errors.setdefault(_CASE_KEYS[key], message)
            elif i >= 0:
                errors.setdefault(f"p{i}-{_PERSON_KEYS.get(key, 'name')}", message)
        if i >= 0:
            general += [f"Person {i + 1}: {m}" for m in checked.general]
    return errors, general


def form_error(data: dict[str, Any]) -> Callable[[Location, str], CaseFileError]:
    """Place a problem on the form: 'Person 2 (father): Date of birth: ...'."""
    def error(where: Location, message: str) -> CaseFileError:
        if len(where) >= 2 and where[0] == "people" and isinstance(where[1], int):
            people = data.get("people") or []
            who = people[where[1]].get("relationship", "") if where[1] < len(people) else ""
            field = LABELS.get(str(where[2]), str(where[2])) + ": " if len(where) > 2 else ""
            return CaseFileError(f"Person {where[1] + 1} ({who}): {field}{message}")
        if where and str(where[0]) in LABELS:
            return CaseFileError(f"{LABELS[str(where[0])]}: {message}")
        return CaseFileError(f"{key_of(where)}: {message}" if where else message)
    return error


def waiting_of(picture: dict[str, Any]) -> list[str]:
    """The agencies some person is still NOT CHECKED for that asking again may change."""
    return sorted({a for person in picture["people"] for a in still_to_ask(person)})


def live_grid(picture: dict[str, Any]) -> dict[str, Any]:
    """The grid for the live page's script: agencies, and per person each cell's state in
    word and symbol, its class, reason and detail (no questions, no full answers)."""
    drawn = grid(picture)
    return {"agencies": drawn["agencies"], "not_checked": drawn.get("not_checked", 0),
            "rows": [{"index": row["index"], "cells": [
                {k: cell.get(k, "") for k in ("agency", "agency_name", "css", "word",
                                              "symbol", "reason", "detail")}
                for cell in row["cells"]]} for row in drawn["rows"]]}


def grid(picture: dict[str, Any]) -> dict[str, Any]:
    """The stored picture as the template draws it: word, symbol and class per cell."""
    rows = []
    for person in picture["people"]:
        cells = []
        for agency in picture["agencies"]:
            cell = person["cells"][agency["id"]]
            cells.append({**cell, "agency": agency["id"], "agency_name": agency["name"],
                          "css": STATE_CLASSES[cell["state"]],
                          "word": STATE_WORDS[cell["state"]],
                          "symbol": STATE_SYMBOLS[cell["state"]]})
        rows.append({**person, "cells": cells})
    return {**picture, "rows": rows}


LOOKUP = "lookup"  # the header's kind for a single lookup kept for My lookups
KEPT_FORM_FIELDS = ("name", "aliases", "dob", "sex", "postcodes", "nhs", "upn", "pnc", "ni",
                    "local", "purpose", "stage", "case", "reason", "urgency")


class KeptLookups:
    """Single lookups kept in the case store (same key, retention and audited reopening), so
    that My lookups reopens a result without asking again. The header names the lookup id,
    case reference, purpose, stage and urgency; the sealed part holds what was typed (not a
    stage approval) and the broker's response."""

    def __init__(self, store: CaseStore) -> None:
        self.store = store

    def save(self, owner: str, values: dict[str, str],
             response: lookup_pb2.LookupResponse) -> StoredCase:
        header = {"kind": LOOKUP, "lookup_id": response.lookup_id,
                  "reference": values.get("case", ""), "purpose": values.get("purpose", ""),
                  "stage": values.get("stage", ""), "urgency": values.get("urgency", "")}
        kept = {"form": {k: values.get(k, "") for k in KEPT_FORM_FIELDS},
                "response": base64.b64encode(response.SerializeToString()).decode()}
        return self.store.save(owner=owner, header=header, picture=kept)

    def kept_of(self, owner: str) -> list[StoredCase]:
        """The owner's lookups still kept, newest first (headers only: no answers)."""
        return [c for c in self.store.cases_of(owner) if c.header.get("kind") == LOOKUP]

    def reopen(self, kept_id: str, analyst: Any) -> tuple[StoredCase, dict[str, str],
                                                          lookup_pb2.LookupResponse]:
        """(CaseStoreError: not kept or not theirs; AuditError: not recorded, not shown)."""
        stored, kept = self.store.reopen(kept_id, analyst=analyst)
        if stored.header.get("kind") != LOOKUP:
            raise CaseStoreError("no such lookup: it is a case")
        response = lookup_pb2.LookupResponse.FromString(base64.b64decode(kept["response"]))
        return stored, dict(kept["form"]), response


def _name(stored: StoredCase) -> str:
    """The case reference as a file name's part."""
    return "".join(c if c.isalnum() or c in "-_" else "_"
                   for c in str(stored.header.get("reference", "case")))


def register(app: FastAPI, *, cfg: ConsoleConfig, render: Callable[..., HTMLResponse],
             need: Callable[[Request], Session],
             form_of: Callable[[Request, Session | None], Awaitable[dict[str, str]]],
             lookup: Callable[[Session, lookup_pb2.LookupRequest], lookup_pb2.LookupResponse],
             agents: Callable[[Session], lookup_pb2.ListAgentsResponse],
             purposes: Callable[[], dict[str, list[str]] | None],
             refused: Callable[[int, str], Exception]) -> KeptLookups | None:
    """Add the case pages (called once from create_app; nothing without `cases:`); returns
    where single lookups are kept for My lookups."""
    if cfg.cases is None:
        return None
    store: CaseStore = cfg.cases.open()
    app.state.cases_enabled = True  # base.html offers the page
    log.info("cases_purged", deleted=store.purge())
    following: dict[str, asyncio.Lock] = {}  # one follow-up at a time per case

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
        offered = purposes()
        return render(request, "cases.html", session, status=status, error=error,
                      errors=errors or {}, general=general or [], error_links=links,
                      purposes=offered, stage_purposes=stage_purposes(offered),
                      values=values or {"urgency": "amber"}, cases=cases,
                      relationships=RELATIONSHIPS, rows=range(FORM_PEOPLE), labels=LABELS,
                      retention_days=store.retention / dt.timedelta(days=1))

    def signable(session: Session) -> None:
        """Refuse before asking anyone when the session's token is bound to a key it does
        not hold (its lookups could not be signed)."""
        try:
            session.signing_key()
        except UnsignedSession as exc:
            raise refused(401, f"No lookup was sent: {exc}") from None

    @app.get("/cases", response_class=HTMLResponse)
    def cases_page(request: Request) -> HTMLResponse:
        return page(request, need(request))

    @app.post("/cases", response_class=HTMLResponse)
    async def open_case(request: Request) -> Response:
        session = need(request)
        form = await form_of(request, session)
        errors, general = field_errors(form, purposes())
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
                lambda: run_case_with(ask=lambda r: lookup(session, r), case=case,
                                      requests=requests))
        except CaseLookupError as exc:
            code: grpc.StatusCode = exc.error.code()  # type: ignore[attr-defined]
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
            raise refused(503, f"The answers came back but could not be kept: {exc}") from None
        log.info("case_stored", case_id=stored.case_id, people=len(case.people),
                 not_checked=picture.not_checked)
        return RedirectResponse(f"/cases/{stored.case_id}", status_code=303)

    def reopen(session: Session, case_id: str, fmt: str) -> tuple[StoredCase, dict[str, Any]]:
        if not (len(case_id) == 32 and all(c in "0123456789abcdef" for c in case_id)):
            raise refused(404, "There is no such case.")
        try:
            stored, picture = store.reopen(case_id, analyst=session.analyst)
        except CaseStoreError as exc:
            raise refused(404, str(exc)) from None
        except AuditError:
            raise refused(503, "This case cannot be shown: reopening it could not be "
                               "recorded in the audit trail.") from None
        if stored.header.get("kind") == LOOKUP:  # a single lookup: My lookups shows it
            raise refused(404, "There is no such case.")
        log.info("case_reopened", case_id=case_id, by=session.analyst.subject, format=fmt)
        return stored, picture

    @app.get("/cases/{case_id}/export.json")
    def export_case(request: Request, case_id: str) -> Response:
        """The family picture for the local authority's case record (reopening: audited)."""
        stored, picture = reopen(need(request), case_id, "json")
        record = {k: v for k, v in picture.items() if k != REQUESTS}
        body = json.dumps({"case_id": stored.case_id, "stored_at": stored.stored_at.isoformat(),
                           "kept_until": stored.expires_at.isoformat(), **record},
                          indent=2, sort_keys=True, ensure_ascii=False)
        return Response(body, media_type="application/json", headers={
            "Content-Disposition": f'attachment; filename="family-picture-{_name(stored)}.json"'})

    @app.get("/cases/{case_id}/export.pdf")
    def export_pdf(request: Request, case_id: str) -> Response:
        """The family picture as a PDF for the case record (reopening: audited)."""
        session = need(request)
        stored, picture = reopen(session, case_id, "pdf")
        timer = rag_timer(str(stored.header.get("urgency", "amber")), stored.stored_at,
                          cfg.rag_hours)
        body = case_pdf(header=stored.header, picture=picture, case_id=stored.case_id,
                        due_at=timer.due_at, stored_at=stored.stored_at,
                        kept_until=stored.expires_at, generated_by=session.analyst.subject)
        return Response(body, media_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="family-picture-{_name(stored)}.pdf"'})

    async def ask_later(session: Session, stored: StoredCase, picture: dict[str, Any],
                        only: set[str] | None = None, new: frozenset[str] = frozenset(),
                        fail: bool = True) -> dict[str, Any]:
        """Ask each person's lookup again of the agencies still NOT CHECKED (only those in
        `only`, if given) and of the agencies `new` to the picture, keep the later answers
        and bump the case's revision (the live page then shows them). Returns the new
        header. A broker refusal is a 502 page when `fail`, else logged and left."""
        signable(session)
        changed = 0
        asked: set[str] = set()
        for person, blob in zip(picture["people"], picture.get(REQUESTS, []), strict=False):
            again = lookup_pb2.LookupRequest.FromString(base64.b64decode(blob))
            agencies = sorted({a for a in still_to_ask(person) if only is None or a in only}
                              | (new if not again.agencies else set()))
            if not agencies:
                continue
            again.agencies[:] = agencies
            try:
                response = await run_in_threadpool(lookup, session, again)
            except grpc.RpcError as exc:
                code = exc.code()  # type: ignore[attr-defined]
                log.warning("case_lookup_failed", code=code.name)
                if fail:
                    raise refused(502, "The broker refused to ask again "
                                       f"({code.name.lower()}).") from None
                break
            asked.update(agencies)
            changed += merge_later(picture, person["index"], response)
        header = dict(stored.header)
        header["revision"] = int(header.get("revision", 0)) + 1
        header["waiting"] = waiting_of(picture)
        header["agencies"] = [a["id"] for a in picture["agencies"]]
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        header["asked_again_at"] = {**header.get("asked_again_at", {}),
                                    **dict.fromkeys(sorted(asked), now)}
        try:
            await run_in_threadpool(lambda: store.update(
                stored, owner=session.analyst.subject, picture=picture, header=header))
        except CaseStoreError as exc:
            raise refused(503, f"The later answers could not be kept: {exc}") from None
        log.info("case_asked_again", case_id=stored.case_id, changed=changed,
                 agencies=sorted(asked))
        return header

    @app.post("/cases/{case_id}/ask-again")
    async def ask_again(request: Request, case_id: str) -> Response:
        """Ask again the agencies still NOT CHECKED (offline, timed out...), person by
        person, and keep their later answers in the picture; no agreement is not asked."""
        session = need(request)
        await form_of(request, session)
        stored, picture = await run_in_threadpool(lambda: reopen(session, case_id, "refresh"))
        await ask_later(session, stored, picture)
        return RedirectResponse(f"/cases/{case_id}", status_code=303)

    async def follow_up(session: Session,
                        stored: StoredCase) -> tuple[StoredCase, dict[str, Any]] | None:
        """While the case page is open: ask again, at once, an agency still NOT CHECKED
        whose agent is now online and answering (at most every FOLLOW_UP_EVERY per agency),
        and any agency registered since. Nothing is reopened or asked when neither (None);
        else the case as it now is (reopened once: that reopening serves the grid sent)."""
        header = stored.header
        if "waiting" not in header:
            return None  # stored before the live grid: the button asks again
        try:
            listed = await run_in_threadpool(agents, session)
        except (grpc.RpcError, UnsignedSession) as exc:
            log.warning("case_follow_up_skipped", reason=type(exc).__name__)
            return None
        answering = {a.agency_id for a in listed.agents
                     if a.online and a.ready and not a.unresponsive}
        now = dt.datetime.now(dt.UTC)
        recent = {a for a, at in header.get("asked_again_at", {}).items()
                  if now - dt.datetime.fromisoformat(at) < FOLLOW_UP_EVERY}
        due = {a for a in header["waiting"] if a in answering} - recent
        new = frozenset({a.agency_id for a in listed.agents}
                        - set(header.get("agencies", [])) - recent)
        if not due and not new:
            return None
        stored, picture = await run_in_threadpool(
            lambda: reopen(session, stored.case_id, "follow-up"))
        header = await ask_later(session, stored, picture, only=due, new=new, fail=False)
        return StoredCase(stored.case_id, stored.stored_at, stored.expires_at, header), picture

    @app.post("/cases/{case_id}/live")
    async def live(request: Request, case_id: str) -> Response:
        """The open case page's poll: follows up (above), then answers {"changed": false}
        if nothing is newer than the page's revision (the header alone is read: not a
        reopening), else the grid as JSON (a reopening, audited)."""
        session = need(request)
        form = await form_of(request, session)
        since = form.get("since", "")
        if not since.isdigit() or not (len(case_id) == 32 and
                                       all(c in "0123456789abcdef" for c in case_id)):
            raise refused(404, "There is no such case.")
        lock = following.setdefault(case_id, asyncio.Lock())
        try:
            async with lock:
                try:
                    stored = await run_in_threadpool(store.header_of, case_id,
                                                     session.analyst.subject)
                except CaseStoreError as exc:
                    raise refused(404, str(exc)) from None
                if stored.header.get("kind") == LOOKUP:
                    raise refused(404, "There is no such case.")
                followed = await follow_up(session, stored)
        finally:
            if not lock.locked():
                following.pop(case_id, None)
        if followed is not None:
            stored, picture = followed
        else:
            revision = int(stored.header.get("revision", 0))
            if revision == int(since):
                return JSONResponse({"revision": revision, "changed": False})
            stored, picture = await run_in_threadpool(
                lambda: reopen(session, case_id, "live"))
        return JSONResponse({"revision": int(stored.header.get("revision", 0)),
                             "changed": True, "can_ask": bool(waiting_of(picture)),
                             **live_grid(picture)})

    @app.get("/cases/{case_id}", response_class=HTMLResponse)
    def show_case(request: Request, case_id: str) -> HTMLResponse:
        session = need(request)
        stored, picture = reopen(session, case_id, "html")
        urgency = str(stored.header.get("urgency", "amber"))
        timer = rag_timer(urgency, stored.stored_at, cfg.rag_hours)
        can_ask = any(still_to_ask(p) for p in picture["people"]) and REQUESTS in picture
        return render(request, "case.html", session, stored=stored, picture=grid(picture),
                      timer=timer, can_ask=can_ask,
                      revision=int(stored.header.get("revision", 0)),
                      live_seconds=cfg.cases.live_poll_seconds if cfg.cases else 15)

    return KeptLookups(store)
