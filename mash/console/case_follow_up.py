"""Asking a stored case's agencies again: those still NOT CHECKED (offline, timed out...)
and those registered since the case was opened, each person's own question (sealed with the
picture) sent again with the analyst's token; the later answers are merged into the picture
and the case's revision bumped, so that an open case page redraws its grid."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import grpc
from starlette.concurrency import run_in_threadpool

from mash.cases.picture import merge_later, still_to_ask
from mash.cases.store import CaseStore, CaseStoreError, StoredCase
from mash.console.broker_client import Broker, in_thread
from mash.console.cases import REQUESTS, reopen_case, signable, waiting_of
from mash.console.pages import Refused
from mash.console.sessions import Session, UnsignedSession
from mash.logs import get_logger
from mash.v1 import lookup_pb2

log = get_logger(__name__)
FOLLOW_UP_EVERY = dt.timedelta(minutes=5)  # an agency is asked again at most so often


class CaseFollowUp:
    """Asks a case's agencies again through the broker and keeps their later answers."""

    def __init__(self, store: CaseStore, broker: Broker) -> None:
        self.store = store
        self.broker = broker

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
        answering (at most every FOLLOW_UP_EVERY per agency), and any agency registered
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
                  if now - dt.datetime.fromisoformat(at) < FOLLOW_UP_EVERY}
        due = {a for a in header["waiting"] if a in answering} - recent
        new = frozenset({a.agency_id for a in listed.agents}
                        - set(header.get("agencies", [])) - recent)
        if not due and not new:
            return None
        stored, picture = await run_in_threadpool(
            lambda: reopen_case(self.store, session, stored.case_id, "follow-up"))
        header = await self.ask_later(session, stored, picture, only=due, new=new, fail=False)
        return StoredCase(stored.case_id, stored.stored_at, stored.expires_at, header), picture
