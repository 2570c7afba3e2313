"""Cases kept by the console: encrypted at rest, for a retention period, then deleted.

One row per case in `console_cases` (SQLite or PostgreSQL through SQLAlchemy): the owner (the
analyst's user id, to list "my cases" and refuse everyone else), when it was stored and when it
expires, and two AES-256-GCM sealed blobs (cryptography's AESGCM): a header (reference,
purpose, stage, urgency, how many people) for the list, and the family picture with every
answer. The row's id, owner and expiry are the associated data, so a row edited or moved to
another owner no longer opens. The key is a 32-byte file only the console reads
(`write_case_key`); its id is stored with each row, so a wrong key is named as such.

Reopening a stored picture is itself audited: a "reopen" entry (who, their agency and role,
the case reference) is appended to the console's own tamper-evident audit log *before* the
picture is decrypted; if it cannot be written the picture is not shown. Nothing is asked of the
agencies again. Expired rows are deleted by `purge` (the console runs it on start and whenever
it stores or lists cases) and can never be reopened, even before the purge ran.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import AfterValidator, BeforeValidator, ConfigDict, ValidationInfo, model_validator

from mash import database_url
from mash.audit.config import AuditConfig, AuditKeys
from mash.audit.entry import AuditEntry
from mash.audit.log import AuditLog
from mash.config import ConfigModel, File, Invalid, Text, base_dir, located, number
from mash.errors import ConfigError, MashError
from mash.files import write_atomic
from mash.identity.tokens import Analyst

SECTION = "cases"
KEY_BYTES = 32
MAX_RETENTION_DAYS = 365
METADATA = sa.MetaData()
CASES = sa.Table(
    "console_cases", METADATA,
    sa.Column("case_id", sa.String(32), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False, index=True),
    sa.Column("stored_at", sa.String(32), nullable=False),
    sa.Column("expires_at", sa.String(32), nullable=False, index=True),
    sa.Column("key_id", sa.String(16), nullable=False),
    sa.Column("header", sa.LargeBinary, nullable=False),
    sa.Column("picture", sa.LargeBinary, nullable=False),
)


class CaseStoreError(MashError):
    """A stored case cannot be stored or opened: the message says why (never its content)."""


def write_case_key(path: Path) -> Path:
    """A new random key for the case store (private file)."""
    write_atomic(path, secrets.token_bytes(KEY_BYTES).hex().encode() + b"\n", private=True)
    return path


def read_case_key(path: Path) -> bytes:
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a case store key (64 hex characters; write one "
                          f"with mash console case-key) ({type(exc).__name__})") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{path}: a case store key is {KEY_BYTES} bytes (64 hex characters)")
    return key


def _store_url(url: str) -> str:
    if not url.startswith(database_url.PREFIXES):
        raise Invalid(database_url.EXPECTED)
    return url


class CaseStoreConfig(ConfigModel):
    """`cases:` in console.yaml: where cases are kept, their key, for how long, and the
    console's own audit log (mash.audit.config keys) for reopening them. A plain value: the
    key files are read by `open`, as the console starts."""

    model_config = ConfigDict(frozen=True)
    not_settings: ClassVar[frozenset[str]] = frozenset({"base_dir", "where"})

    store: Annotated[Text, AfterValidator(_store_url)]
    key_file: File
    retention_days: Annotated[float, BeforeValidator(
        number(0.01, MAX_RETENTION_DAYS))] = 30.0
    audit: AuditConfig
    # how often an open case page asks for later answers
    live_poll_seconds: Annotated[float, BeforeValidator(number(1.0, 600.0))] = 15.0
    # how often the console follows up, with no page open, the open cases of the analysts
    # signed in to it; and how long before an agency is asked again about one case
    follow_up_seconds: Annotated[float, BeforeValidator(number(1.0, 3600.0))] = 60.0
    ask_again_minutes: Annotated[float, BeforeValidator(number(1.0, 1440.0))] = 5.0
    base_dir: Path = Path()  # a relative sqlite:///path is relative to console.yaml
    where: str = SECTION  # the section, as errors name it (`<file>: cases`)

    @model_validator(mode="after")
    def _located(self, info: ValidationInfo) -> CaseStoreConfig:
        where = located(info, SECTION, self.where)
        object.__setattr__(self, "where", where)
        object.__setattr__(self, "base_dir", base_dir(info) or self.base_dir)
        # the audit section's own errors (its key files) name it inside this one
        object.__setattr__(self, "audit", self.audit.model_copy(
            update={"where": f"{where}: audit"}))
        return self

    @property
    def retention(self) -> dt.timedelta:
        return dt.timedelta(days=self.retention_days)

    def open(self) -> CaseStore:
        """The store, its key and the audit log's keys read now (as the console starts);
        a bad key file is a ConfigError naming console.yaml and the key."""
        try:
            key = read_case_key(self.key_file)
        except ConfigError as exc:
            raise ConfigError(f"{self.where}: key_file: {exc}") from None
        audit = AuditKeys.read(self.audit)
        return CaseStore(database_url.engine_url(self.store, self.base_dir), key=key,
                         retention=self.retention, audit=audit.open_log())


@dataclass(frozen=True)
class StoredCase:
    case_id: str
    stored_at: dt.datetime
    expires_at: dt.datetime
    header: dict[str, Any]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


class CaseStore:
    def __init__(self, url: str, *, key: bytes, retention: dt.timedelta,
                 audit: AuditLog) -> None:
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(key).hexdigest()[:16]
        self.retention = retention
        self.audit = audit
        self.engine = sa.create_engine(url)
        try:
            METADATA.create_all(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise CaseStoreError(f"the case store cannot be opened ({type(exc).__name__})") \
                from None

    def close(self) -> None:
        self.engine.dispose()
        self.audit.close()

    def __enter__(self) -> CaseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _aad(self, case_id: str, owner: str, expires: str, part: str) -> bytes:
        return json.dumps([case_id, owner, expires, part]).encode()

    def _seal(self, value: Any, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, json.dumps(value).encode(), aad)

    def _open(self, blob: bytes, aad: bytes) -> Any:
        try:
            return json.loads(self._aead.decrypt(blob[:12], blob[12:], aad))
        except (InvalidTag, ValueError):
            raise CaseStoreError("a stored case does not decrypt: it was altered, or moved to "
                                 "another owner") from None

    def save(self, *, owner: str, header: dict[str, Any], picture: dict[str, Any],
             now: dt.datetime | None = None) -> StoredCase:
        now = now or _now()
        self.purge(now)
        case_id = secrets.token_hex(16)
        expires = _text(now + self.retention)
        row = {"case_id": case_id, "owner": owner, "stored_at": _text(now),
               "expires_at": expires, "key_id": self.key_id,
               "header": self._seal(header, self._aad(case_id, owner, expires, "header")),
               "picture": self._seal(picture, self._aad(case_id, owner, expires, "picture"))}
        try:
            with self.engine.begin() as conn:
                conn.execute(CASES.insert().values(**row))
        except sa.exc.SQLAlchemyError as exc:
            raise CaseStoreError(f"the case could not be stored ({type(exc).__name__})") \
                from None
        return StoredCase(case_id, now, now + self.retention, header)

    def _row(self, case_id: str, owner: str, now: dt.datetime) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(CASES).where(
                CASES.c.case_id == case_id, CASES.c.owner == owner,
                CASES.c.expires_at > _text(now))).first()
        if row is None:
            raise CaseStoreError("no such case: it expired and was deleted, or it is not yours")
        if row.key_id != self.key_id:
            raise CaseStoreError("this case was stored under another key (the case key file "
                                 "changed)")
        return row

    def cases_of(self, owner: str, now: dt.datetime | None = None) -> list[StoredCase]:
        """The owner's cases still kept, newest first (headers only: no answers)."""
        now = now or _now()
        self.purge(now)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(CASES).where(CASES.c.owner == owner).order_by(
                CASES.c.stored_at.desc())).all()
        return [StoredCase(r.case_id, dt.datetime.fromisoformat(r.stored_at),
                           dt.datetime.fromisoformat(r.expires_at),
                           self._open(r.header, self._aad(r.case_id, owner, r.expires_at,
                                                          "header")))
                for r in rows if r.key_id == self.key_id]

    def header_of(self, case_id: str, owner: str,
                  now: dt.datetime | None = None) -> StoredCase:
        """A kept case's header alone (reference, purpose, stage, urgency, revision: what the
        list shows, no answers), so not a reopening."""
        row = self._row(case_id, owner, now or _now())
        header = self._open(row.header, self._aad(case_id, row.owner, row.expires_at,
                                                  "header"))
        return StoredCase(case_id, dt.datetime.fromisoformat(row.stored_at),
                          dt.datetime.fromisoformat(row.expires_at), header)

    def reopen(self, case_id: str, *, analyst: Analyst,
               now: dt.datetime | None = None) -> tuple[StoredCase, dict[str, Any]]:
        """The stored picture, after the reopening is on the audit record (AuditError: not
        recorded, so not shown)."""
        now = now or _now()
        row = self._row(case_id, analyst.subject, now)
        header = self._open(row.header, self._aad(case_id, row.owner, row.expires_at,
                                                  "header"))
        self.audit.append(AuditEntry(
            event="reopen", requester=analyst.subject, requester_agency=analyst.agency,
            role=analyst.role, team=analyst.team,
            case_reference=str(header.get("reference", "")),
            purpose=str(header.get("purpose", "")), stage=str(header.get("stage", "")),
            urgency=str(header.get("urgency", "")),
            detail=f"stored {header.get('kind', 'case')} {case_id} reopened from the console "
                   "(not asked again)"))
        picture = self._open(row.picture, self._aad(case_id, row.owner, row.expires_at,
                                                    "picture"))
        stored = StoredCase(case_id, dt.datetime.fromisoformat(row.stored_at),
                            dt.datetime.fromisoformat(row.expires_at), header)
        return stored, picture

    def update(self, stored: StoredCase, *, owner: str, picture: dict[str, Any],
               header: dict[str, Any] | None = None) -> None:
        """Replace a kept case's picture (later answers), and its header if given; its expiry
        does not move."""
        expires = _text(stored.expires_at)
        values = {"picture": self._seal(picture, self._aad(stored.case_id, owner, expires,
                                                           "picture"))}
        if header is not None:
            values["header"] = self._seal(header, self._aad(stored.case_id, owner, expires,
                                                            "header"))
        try:
            with self.engine.begin() as conn:
                result = conn.execute(CASES.update().where(
                    CASES.c.case_id == stored.case_id, CASES.c.owner == owner,
                    CASES.c.key_id == self.key_id).values(**values))
        except sa.exc.SQLAlchemyError as exc:
            raise CaseStoreError(f"the case could not be updated ({type(exc).__name__})") \
                from None
        if result.rowcount != 1:
            raise CaseStoreError("no such case: it expired and was deleted, or it is not yours")

    def purge(self, now: dt.datetime | None = None) -> int:
        """Delete every case past its retention; returns how many."""
        try:
            with self.engine.begin() as conn:
                result = conn.execute(CASES.delete().where(
                    CASES.c.expires_at <= _text(now or _now())))
        except sa.exc.SQLAlchemyError as exc:
            raise CaseStoreError(f"expired cases could not be deleted ({type(exc).__name__})") \
                from None
        return int(result.rowcount or 0)
