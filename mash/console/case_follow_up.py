"""Asking a stored case's agencies again: those still NOT CHECKED (offline, timed out...)
and those registered since the case was opened, each person's own question (sealed with the
picture) sent again with the analyst's token; the later answers are merged into the picture
and the case's revision bumped, so that an open case page redraws its grid.

Asked while a case page is open (its poll) and, in the background, every
`cases.follow_up_seconds` (console.yaml) for
the open cases of every analyst signed in to this console, with that analyst's own session:
so the stored case is complete when it is next opened. Nobody signed in, nothing asked: the
console holds no lookup credentials of its own.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from starlette.concurrency import run_in_threadpool

from mash.cases.picture import merge_later, still_to_ask
from mash.cases.store import CaseStore, CaseStoreError, StoredCase
from mash.console.broker_client import Broker, in_thread
from mash.console.cases import LOOKUP, REQUESTS, reopen_case, signable, waiting_of
from mash.console.pages import Refused
from mash.console.sessions import Session, SessionStore, UnsignedSession
from mash.logs import get_logger
from mash.v1 import lookup_pb2

log = get_logger(__name__)
TOKEN_MARGIN = dt.timedelta(seconds=30)  # a token about to expire is not sent


class CaseFollowUp:
    """Asks a case's agencies again through the broker and keeps their later answers."""

    def __init__(self, store: CaseStore, broker: Broker, *, sweep_seconds: float = 60.0,
                 ask_again: dt.timedelta = dt.timedelta(minutes=5)) -> None:
        self.store = store
        self.broker = broker
        self.sweep_seconds = sweep_seconds  # between background follow-ups
        self.ask_again = ask_again  # an agency is asked again about a case at most so often
        self._following: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def one_at_a_time(self, case_id: str) -> AsyncIterator[None]:
        """One follow-up of a case at a time (its page's polls and the background's)."""
        lock = self._following.setdefault(case_id, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked():
                self._following.pop(case_id, None)

    async def ask_later(self, session: Session, stored: StoredCase, picture: dict[str, Any],
                        *, only: set[str] | None = None, new: frozenset[str] = frozenset(),
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
                response = await in_thread(self.broker.lookup, session, again)
            except grpc.RpcError as exc:
                code = exc.code()
                log.warning("case_lookup_failed", code=code.name)
                if fail:
                    raise Refused(502, "The broker refused to ask again "
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
            await run_in_threadpool(lambda: self.store.update(
                stored, owner=session.analyst.subject, picture=picture, header=header))
        except CaseStoreError as exc:
            raise Refused(503, f"The later answers could not be kept: {exc}") from None
        log.info("case_asked_again", case_id=stored.case_id, changed=changed,
                 agencies=sorted(asked))
        return header

    async def follow_up(self, session: Session,
                        stored: StoredCase) -> tuple[StoredCase, dict[str, Any]] | None:
        """Ask again, at once, an agency still NOT CHECKED whose agent is now online and
        answering (at most once every `ask_again` per agency), and any agency registered
        since. Nothing is reopened or asked when neither (None); else the case as it now is
        (reopened once: that reopening serves the grid sent)."""
        header = stored.header
        if "waiting" not in header:
            return None  # stored before the live grid: the button asks again
        try:
            listed = await in_thread(self.broker.agents, session)
        except (grpc.RpcError, UnsignedSession) as exc:
            log.warning("case_follow_up_skipped", reason=type(exc).__name__)
            return None
        answering = {a.agency_id for a in listed.agents
                     if a.online and a.ready and not a.unresponsive}
        now = dt.datetime.now(dt.UTC)
        recent = {a for a, at in header.get("asked_again_at", {}).items()
                  if now - dt.datetime.fromisoformat(at) < self.ask_again}
        due = {a for a in header["waiting"] if a in answering} - recent
        new = frozenset({a.agency_id for a in listed.agents}
                        - set(header.get("agencies", [])) - recent)
        if not due and not new:
            return None
        stored, picture = await run_in_threadpool(
            lambda: reopen_case(self.store, session, stored.case_id, "follow-up"))
        header = await self.ask_later(session, stored, picture, only=due, new=new, fail=False)
        return StoredCase(stored.case_id, stored.stored_at, stored.expires_at, header), picture

    async def follow_up_signed_in(self, sessions: SessionStore) -> int:
        """Follow up (as above) each open case of each analyst signed in here, with their
        own session (the one whose token lives longest); returns how many cases changed.
        A case that cannot be followed up now (a token without its key, the store or the
        audit trail unavailable) is logged and left for the next time."""
        now = dt.datetime.now(dt.UTC)
        owners: dict[str, Session] = {}
        for session in await run_in_threadpool(sessions.signed_in, now):
            if session.analyst.expires_at - now <= TOKEN_MARGIN:
                continue  # the broker would refuse it; a request renews it first
            known = owners.get(session.analyst.subject)
            if known is None or session.analyst.expires_at > known.analyst.expires_at:
                owners[session.analyst.subject] = session
        changed = 0
        for owner, session in owners.items():
            cases = await run_in_threadpool(self.store.cases_of, owner)
            for case in cases:
                if case.header.get("kind") == LOOKUP or not case.header.get("waiting"):
                    continue
                try:
                    async with self.one_at_a_time(case.case_id):
                        # read again: the page's poll may have asked meanwhile
                        stored = await run_in_threadpool(self.store.header_of, case.case_id,
                                                         owner)
                        if await self.follow_up(session, stored) is not None:
                            changed += 1
                except (Refused, CaseStoreError) as exc:
                    log.warning("case_follow_up_skipped", case_id=case.case_id,
                                reason=getattr(exc, "message", str(exc)))
        return changed

    async def run(self, sessions: SessionStore) -> None:
        """The background follow-ups, every `sweep_seconds` until cancelled."""
        while True:
            await asyncio.sleep(self.sweep_seconds)
            try:
                changed = await self.follow_up_signed_in(sessions)
            except Exception as exc:  # never end the loop: the next sweep may succeed
                log.error("case_follow_ups_failed", reason=f"{type(exc).__name__}: {exc}")
                continue
            if changed:
                log.info("case_follow_ups", changed=changed)
