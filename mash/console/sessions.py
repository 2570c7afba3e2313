"""Server-side sessions: the analyst's token stays in this process, never in the cookie.

The cookie holds only a random session id, signed (itsdangerous) with the console's session
secret, so a forged or altered cookie is refused before any lookup. Sessions live in memory:
restarting the console signs everyone out, and one console process serves one MASH team.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import threading
from dataclasses import dataclass, field

from itsdangerous import BadSignature, URLSafeTimedSerializer

from mash.identity.tokens import Analyst

COOKIE = "mash_session"
LOGIN_CSRF_COOKIE = "mash_signin_csrf"
MAX_LOOKUPS_KEPT = 50


@dataclass(frozen=True)
class LookupRecord:
    """A lookup's RAG timer, kept for the session. No personal data: ids and times only."""

    lookup_id: str
    case_reference: str
    purpose: str
    stage: str
    urgency: str
    asked_at: dt.datetime
    due_at: dt.datetime
    summary: str


@dataclass
class Session:
    id: str
    token: str
    analyst: Analyst
    csrf: str
    created_at: dt.datetime
    expires_at: dt.datetime
    lookups: list[LookupRecord] = field(default_factory=list)
    refresh_token: str = ""  # OpenID sign-in: renews `token` before it expires
    id_token: str = ""  # for RP-initiated sign-out at the provider

    def csrf_ok(self, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(self.csrf, submitted or "")


class SessionStore:
    def __init__(self, secret: bytes, lifetime: dt.timedelta) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="mash-console-session")
        self.lifetime = lifetime
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, token: str, analyst: Analyst, now: dt.datetime | None = None, *,
               refresh_token: str = "", id_token: str = "") -> tuple[Session, str]:
        """A new session and its cookie value. Without a refresh token it ends with the
        token if that is sooner; with one the token is renewed (see `renew`)."""
        now = now or dt.datetime.now(dt.UTC)
        ends = now + self.lifetime
        session = Session(id=secrets.token_urlsafe(32), token=token, analyst=analyst,
                          csrf=secrets.token_urlsafe(32), created_at=now,
                          expires_at=ends if refresh_token else min(ends, analyst.expires_at),
                          refresh_token=refresh_token, id_token=id_token)
        with self._lock:
            self._purge(now)
            self._sessions[session.id] = session
        return session, self._serializer.dumps(session.id)

    def get(self, cookie: str | None, now: dt.datetime | None = None) -> Session | None:
        if not cookie:
            return None
        try:
            session_id = self._serializer.loads(
                cookie, max_age=int(self.lifetime.total_seconds()))
        except BadSignature:
            return None
        now = now or dt.datetime.now(dt.UTC)
        with self._lock:
            session = self._sessions.get(str(session_id))
            if session is None:
                return None
            if now >= session.expires_at:
                del self._sessions[session.id]
                return None
            return session

    def renew(self, session: Session, *, token: str, analyst: Analyst, refresh_token: str,
              id_token: str) -> None:
        with self._lock:
            session.token, session.analyst = token, analyst
            session.refresh_token = refresh_token
            session.id_token = id_token or session.id_token

    def end(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)

    def record(self, session: Session, record: LookupRecord) -> None:
        with self._lock:
            session.lookups.insert(0, record)
            del session.lookups[MAX_LOOKUPS_KEPT:]

    def __len__(self) -> int:
        return len(self._sessions)

    def _purge(self, now: dt.datetime) -> None:
        for sid in [s.id for s in self._sessions.values() if now >= s.expires_at]:
            del self._sessions[sid]
