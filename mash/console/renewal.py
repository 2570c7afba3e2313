"""Keeping a signed-in session's access token current: refreshed through the identity
provider shortly before it expires, on the request that finds it due."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from mash.console.config import ConsoleConfig
from mash.console.oidc import OidcClient, Tokens
from mash.console.sessions import COOKIE, Session, SessionStore, SessionStoreError, check_key
from mash.errors import IdentityError
from mash.identity.dpop import ClientKey
from mash.identity.tokens import Analyst
from mash.logs import get_logger

log = get_logger(__name__)
REFRESH_MARGIN = dt.timedelta(seconds=60)


class TokenRenewal:
    """Refreshes a session's tokens once however many of its requests find them due."""

    def __init__(self, cfg: ConsoleConfig, sessions: SessionStore, oidc: OidcClient) -> None:
        self.cfg = cfg
        self.sessions = sessions
        self.oidc = oidc
        self.renewing: dict[str, asyncio.Lock] = {}

    @staticmethod
    def due(session: Session) -> bool:
        return session.analyst.expires_at - dt.datetime.now(dt.UTC) <= REFRESH_MARGIN

    def refreshed(self, refresh_token: str, key: ClientKey | None) -> tuple[Tokens, Analyst]:
        tokens = self.oidc.refresh(refresh_token, proof_key=key)  # bound to the same key again
        analyst = self.cfg.auth.verify(tokens.access_token)
        check_key(analyst, key)
        return tokens, analyst

    async def renew_if_due(self, cookie: str | None) -> None:
        """Refresh the access token through the provider a minute before it expires, in a
        thread (a slow provider stalls no other request), once per session however many of
        its requests arrive meanwhile (a refresh token is single use). A refusal ends the
        session (the account may have been disabled at the provider)."""
        session = self.sessions.get(cookie)
        if session is None or not session.refresh_token or not self.due(session):
            return
        lock = self.renewing.setdefault(session.id, asyncio.Lock())
        try:
            async with lock:
                if self.sessions.get(cookie) is None or not self.due(session):
                    return  # renewed (or ended) by the request we waited for
                try:
                    tokens, analyst = await asyncio.to_thread(
                        self.refreshed, session.refresh_token, session.proof_key())
                except IdentityError as exc:
                    log.warning("refresh_refused", reason=str(exc))
                    self.sessions.end(session)
                    return
                self.sessions.renew(session, token=tokens.access_token, analyst=analyst,
                                    refresh_token=tokens.refresh_token,
                                    id_token=tokens.id_token)
                log.info("token_refreshed", analyst=analyst.subject,
                         token_expires=analyst.expires_at.isoformat())
        finally:
            if not lock.locked():
                self.renewing.pop(session.id, None)


def add_token_renewal(app: FastAPI, renewal: TokenRenewal | None) -> None:
    """Renew each request's session when due (with an identity provider), and answer 503
    while the session store cannot be read: nobody is signed in meanwhile."""

    @app.middleware("http")
    async def renew_tokens(request: Request,
                           call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        try:
            if renewal is not None:
                await renewal.renew_if_due(request.cookies.get(COOKIE))
            return await call_next(request)
        except SessionStoreError as exc:
            log.error("session_store_unavailable", reason=str(exc))
            return HTMLResponse(f"Sign-in is unavailable: {exc}. Try again shortly; the "
                                "console's operators have been told.", status_code=503)
