"""Server-side sessions: the analyst's token (and, with oidc.bind_tokens, the session's proof
key, to which the token is bound and with which its lookups are signed) stays with the
console, never in the cookie.

The cookie holds only a random session id, signed (itsdangerous) with the console's session
secret, so a forged or altered cookie is refused before any lookup.

Where sessions live (`session.store` in console.yaml):
- in memory (the default): restarting the console signs everyone out, and one console
  process serves one MASH team;
- in a database (SQLite, or PostgreSQL shared by several consoles behind a load balancer): a
  console restart or a second console keeps users signed in. Each row is sealed with
  AES-256-GCM (cryptography's AESGCM) under a key derived (HKDF) from the session secret, which
  every console of the MASH shares already to check cookies; the row is named by an HMAC of the
  session id, not the id itself, so the database alone neither reads a token nor makes a
  cookie. The row's name and expiry are the associated data: a row edited or copied to another
  session no longer opens, and is treated as no session (sign in again).

In one process a session is one object (a renewal seen by the request that waited for it);
every `get` reads the database again, so another console's renewal or sign-out is seen at
once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, URLSafeTimedSerializer

from mash.dberrors import describe
from mash.errors import IdentityError, MashError
from mash.identity.dpop import ClientKey
from mash.identity.tokens import Analyst
from mash.logs import get_logger

COOKIE = "mash_session"
LOGIN_CSRF_COOKIE = "mash_signin_csrf"
MAX_LOOKUPS_KEPT = 50
log = get_logger(__name__)

METADATA = sa.MetaData()
SESSIONS = sa.Table(
    "console_sessions", METADATA,
    sa.Column("row_id", sa.String(64), primary_key=True),
    sa.Column("expires_at", sa.String(40), nullable=False, index=True),
    sa.Column("sealed", sa.LargeBinary, nullable=False),
)


class SessionStoreError(MashError):
    """The session database cannot be used: the message says why (never a token)."""


class UnsignedSession(IdentityError):
    """The session's token is bound to a proof key the session does not hold: nothing may
    be sent with it (unsigned it would be refused, or worse, accepted somewhere)."""


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
    # OpenID sign-in with oidc.bind_tokens: the session's own proof key (PKCS#8 PEM), to
    # which the provider binds `token` (cnf.jkt) and with which every lookup is signed.
    # Server-side only, like the token (sealed in a shared store's row); never in a repr.
    proof_key_pem: str = field(default="", repr=False)

    def proof_key(self) -> ClientKey | None:
        """The session's proof key, or None for a session without one (UnsignedSession if
        it does not load)."""
        if not self.proof_key_pem:
            return None
        try:
            return ClientKey.from_pem(self.proof_key_pem.encode())
        except IdentityError:
            raise UnsignedSession("this session's proof key cannot be read: sign in "
                                  "again") from None

    def signing_key(self) -> ClientKey | None:
        """The key this session's lookups must be signed with: None when its token is not
        bound to a key; UnsignedSession when it is bound to one the session does not hold
        (a pasted bound token, or a key that is not the token's): such a token is never sent
        unsigned."""
        bound = self.analyst.key_thumbprint
        key = self.proof_key()
        if not bound:
            return key
        if key is None:
            raise UnsignedSession("this session's token is bound to a proof key the console "
                                "does not hold: sign in again through the identity provider")
        if key.thumbprint != bound:
            raise UnsignedSession("this session's token is bound to another proof key than the "
                                "session's: sign in again")
        return key

    def csrf_ok(self, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(self.csrf, submitted or "")


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _to_json(session: Session) -> dict[str, Any]:
    value = dataclasses.asdict(session)
    value["analyst"]["expires_at"] = _when(session.analyst.expires_at)
    for name in ("created_at", "expires_at"):
        value[name] = _when(getattr(session, name))
    for record, raw in zip(session.lookups, value["lookups"], strict=True):
        raw["asked_at"], raw["due_at"] = _when(record.asked_at), _when(record.due_at)
    return value


def _from_json(value: dict[str, Any]) -> Session:
    analyst = dict(value["analyst"])
    analyst["expires_at"] = dt.datetime.fromisoformat(analyst["expires_at"])
    lookups = [LookupRecord(**{**raw, "asked_at": dt.datetime.fromisoformat(raw["asked_at"]),
                               "due_at": dt.datetime.fromisoformat(raw["due_at"])})
               for raw in value["lookups"]]
    return Session(
        id=value["id"], token=value["token"], analyst=Analyst(**analyst), csrf=value["csrf"],
        created_at=dt.datetime.fromisoformat(value["created_at"]),
        expires_at=dt.datetime.fromisoformat(value["expires_at"]), lookups=lookups,
        refresh_token=value["refresh_token"], id_token=value["id_token"],
        proof_key_pem=str(value.get("proof_key_pem", "")))


class SessionTable:
    """Sessions sealed in a database table (SQLite or PostgreSQL through SQLAlchemy)."""

    def __init__(self, url: str, secret: bytes) -> None:
        keys = HKDF(algorithm=hashes.SHA256(), length=64, salt=None,
                    info=b"mash-console-session-store-v1").derive(secret)
        self._aead = AESGCM(keys[:32])
        self._names = keys[32:]
        self.engine = sa.create_engine(url)
        try:
            METADATA.create_all(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise SessionStoreError(
                f"the session store cannot be opened: {describe(exc)}") from None

    def _row_id(self, session_id: str) -> str:
        return hmac.new(self._names, session_id.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def _aad(row_id: str, expires: str) -> bytes:
        return json.dumps([row_id, expires]).encode()

    def _run(self, what: str, statement: Any) -> Any:
        try:
            with self.engine.begin() as conn:
                return conn.execute(statement)
        except sa.exc.SQLAlchemyError as exc:
            raise SessionStoreError(f"the session store could not {what}: "
                                    f"{describe(exc)}") from None

    def put(self, session: Session) -> None:
        row_id, expires = self._row_id(session.id), _when(session.expires_at)
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, json.dumps(_to_json(session)).encode(),
                                            self._aad(row_id, expires))
        with self.engine.begin() as conn:
            try:
                updated = conn.execute(SESSIONS.update().where(
                    SESSIONS.c.row_id == row_id).values(expires_at=expires, sealed=sealed))
                if updated.rowcount == 0:
                    conn.execute(SESSIONS.insert().values(row_id=row_id, expires_at=expires,
                                                          sealed=sealed))
            except sa.exc.SQLAlchemyError as exc:
                raise SessionStoreError(f"the session store could not keep a session: "
                                        f"{describe(exc)}") from None

    def fetch(self, session_id: str, now: dt.datetime) -> Session | None:
        row_id = self._row_id(session_id)
        try:
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(SESSIONS).where(
                    SESSIONS.c.row_id == row_id, SESSIONS.c.expires_at > _when(now))).first()
        except sa.exc.SQLAlchemyError as exc:
            raise SessionStoreError(f"the session store could not be read: "
                                    f"{describe(exc)}") from None
        if row is None:
            return None
        try:
            plain = self._aead.decrypt(row.sealed[:12], row.sealed[12:],
                                       self._aad(row_id, row.expires_at))
            session = _from_json(json.loads(plain))
        except (InvalidTag, ValueError, KeyError, TypeError):
            # altered, copied from another row, or sealed under another secret
            log.warning("session_row_refused", reason="does not open with this console's "
                                                      "session secret")
            return None
        return session if session.id == session_id else None

    def delete(self, session_id: str) -> None:
        self._run("end a session",
                  SESSIONS.delete().where(SESSIONS.c.row_id == self._row_id(session_id)))

    def purge(self, now: dt.datetime) -> int:
        result = self._run("delete expired sessions",
                           SESSIONS.delete().where(SESSIONS.c.expires_at <= _when(now)))
        return int(result.rowcount or 0)

    def count(self, now: dt.datetime) -> int:
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(sa.select(sa.func.count()).select_from(SESSIONS).where(
                    SESSIONS.c.expires_at > _when(now))).scalar_one())
        except sa.exc.SQLAlchemyError as exc:
            raise SessionStoreError(f"the session store could not be read: "
                                    f"{describe(exc)}") from None

    def close(self) -> None:
        self.engine.dispose()


class SessionStore:
    """The console's sessions: in memory, or in `table` (shared by every console using it)."""

    def __init__(self, secret: bytes, lifetime: dt.timedelta, *,
                 table: SessionTable | None = None) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="mash-console-session")
        self.lifetime = lifetime
        self._table = table
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    @property
    def shared(self) -> bool:
        """True when sessions outlive this process (a database)."""
        return self._table is not None

    def create(self, token: str, analyst: Analyst, now: dt.datetime | None = None, *,
               refresh_token: str = "", id_token: str = "",
               proof_key: ClientKey | None = None) -> tuple[Session, str]:
        """A new session and its cookie value. Without a refresh token it ends with the
        token if that is sooner; with one the token is renewed (see `renew`). `proof_key`:
        the key the token is bound to, kept for the session's lookups (and renewals)."""
        now = now or dt.datetime.now(dt.UTC)
        ends = now + self.lifetime
        session = Session(id=secrets.token_urlsafe(32), token=token, analyst=analyst,
                          csrf=secrets.token_urlsafe(32), created_at=now,
                          expires_at=ends if refresh_token else min(ends, analyst.expires_at),
                          refresh_token=refresh_token, id_token=id_token,
                          proof_key_pem=proof_key.to_pem().decode() if proof_key else "")
        with self._lock:
            self._purge(now)
            if self._table is not None:
                self._table.put(session)
            self._sessions[session.id] = session
        return session, self._serializer.dumps(session.id)

    def get(self, cookie: str | None, now: dt.datetime | None = None) -> Session | None:
        if not cookie:
            return None
        try:
            session_id = str(self._serializer.loads(
                cookie, max_age=int(self.lifetime.total_seconds())))
        except BadSignature:
            return None
        now = now or dt.datetime.now(dt.UTC)
        with self._lock:
            if self._table is not None:
                return self._load(session_id, now)
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now >= session.expires_at:
                del self._sessions[session.id]
                return None
            return session

    def _load(self, session_id: str, now: dt.datetime) -> Session | None:
        assert self._table is not None
        stored = self._table.fetch(session_id, now)
        if stored is None:
            self._sessions.pop(session_id, None)
            return None
        known = self._sessions.get(session_id)
        if known is None:
            self._sessions[session_id] = stored
            return stored
        for item in dataclasses.fields(Session):  # the same object, as the database has it
            setattr(known, item.name, getattr(stored, item.name))
        return known

    def renew(self, session: Session, *, token: str, analyst: Analyst, refresh_token: str,
              id_token: str) -> None:
        with self._lock:
            session.token, session.analyst = token, analyst
            session.refresh_token = refresh_token
            session.id_token = id_token or session.id_token
            if self._table is not None:
                self._table.put(session)

    def end(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)
            if self._table is not None:
                self._table.delete(session.id)

    def record(self, session: Session, record: LookupRecord) -> None:
        with self._lock:
            session.lookups.insert(0, record)
            del session.lookups[MAX_LOOKUPS_KEPT:]
            if self._table is not None:
                self._table.put(session)

    def signed_in(self, now: dt.datetime | None = None) -> list[Session]:
        """The sessions this process holds that are still signed in (for work done with no
        request, such as case follow-ups); with a database each is read again, so one
        ended or renewed by another console is seen."""
        now = now or dt.datetime.now(dt.UTC)
        with self._lock:
            held = list(self._sessions.values())
            if self._table is None:
                return [s for s in held if now < s.expires_at]
            found = [self._load(s.id, now) for s in held]
        return [s for s in found if s is not None]

    def __len__(self) -> int:
        if self._table is not None:
            return self._table.count(dt.datetime.now(dt.UTC))
        return len(self._sessions)

    def close(self) -> None:
        if self._table is not None:
            self._table.close()

    def _purge(self, now: dt.datetime) -> None:
        for sid in [s.id for s in self._sessions.values() if now >= s.expires_at]:
            del self._sessions[sid]
        if self._table is not None:
            self._table.purge(now)


def check_key(analyst: Analyst, key: ClientKey | None) -> None:
    """Refuse (IdentityError) a token not bound to exactly the session's key: with a key,
    cnf.jkt must name it; without one, the token must not be bound (its key is elsewhere)."""
    if key is not None and analyst.key_thumbprint != key.thumbprint:
        raise IdentityError("the identity provider's token is not bound to this session's "
                            "proof key (cnf.jkt): enable DPoP for the console's client")
    if key is None and analyst.key_thumbprint:
        raise IdentityError("the token is bound to a proof key (cnf.jkt) this console does "
                            "not hold, so its lookups could not be signed: sign in through "
                            "the identity provider instead")
