"""console.yaml: where the console listens, which broker it talks to, and how it trusts tokens.

`ConsoleSettings` is the file, read by a pydantic model (mash.config.ConfigModel): a plain
value, checked as it is read. `load` then reads what the settings name (the session and
client secrets, the audit hash key, the HTTPS certificate's identity) and makes the token
verifier: the `ConsoleConfig` the console runs with, as it starts; a bad file is a one-line
ConfigError naming console.yaml, the section and the key.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BeforeValidator, ValidationInfo, model_validator

from mash import database_url
from mash.addresses import BrokerAddresses
from mash.audit.store import AuditStore, open_store
from mash.audit.subject_hash import SubjectHasher
from mash.cases.store import CaseStoreConfig
from mash.config import (
    ConfigModel,
    File,
    Flag,
    Invalid,
    LogLevel,
    Text,
    TextList,
    base_dir,
    load_model,
    number,
)
from mash.console.oidc import OidcConfig
from mash.errors import ConfigError
from mash.identity.certs import identity_from_pem
from mash.identity.tls import TlsFiles
from mash.identity.tokens import AuthConfig, TokenVerifier
from mash.policy.store import PolicyConfig

# How long an analyst has to act on a lookup, by RAG rating (hours). Red is "within hours".
DEFAULT_RAG_HOURS = {"red": 4.0, "amber": 24.0, "green": 72.0}
MIN_SECRET_BYTES = 32
T = TypeVar("T")


# -- console.yaml, as read: plain values ------------------------------------------------------


def _listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise Invalid(f"{listen!r} is not HOST:PORT, e.g. 127.0.0.1:8443")
    return host.strip("[]"), int(port)


def _check_listen(listen: str) -> str:
    _listen(listen)
    return listen


def _session_store(store: str, info: ValidationInfo) -> str:
    if not store.startswith(database_url.PREFIXES):
        raise Invalid(database_url.EXPECTED)
    return database_url.engine_url(store, base_dir(info) or Path.cwd())


def _hours(value: Any) -> float:
    return number(0.1, 24 * 30)(value)


Hours = Annotated[float, BeforeValidator(_hours)]


class ServerTlsSettings(ConfigModel):
    """`server_tls:`: the console's HTTPS certificate and key."""

    cert: File
    key: File


class ConsoleBroker(BrokerAddresses):
    """`broker:`: the broker (or every broker) the console asks."""

    timeout_seconds: Annotated[float, BeforeValidator(number(0.5, 120))] = 15.0


class SessionSettings(ConfigModel):
    """`session:`."""

    secret_file: File
    lifetime_minutes: Annotated[float, BeforeValidator(number(1, 24 * 60))] = 480.0
    # a database URL (SQLAlchemy form) for sessions every console shares and that outlive a
    # restart; None keeps them in this process (mash/console/sessions.py)
    store: Annotated[Text, AfterValidator(_session_store)] | None = None


class RagHours(ConfigModel):
    """`rag_hours:` (hours to act on a lookup, by RAG rating)."""

    red: Hours = DEFAULT_RAG_HOURS["red"]
    amber: Hours = DEFAULT_RAG_HOURS["amber"]
    green: Hours = DEFAULT_RAG_HOURS["green"]

    @model_validator(mode="after")
    def _order(self) -> RagHours:
        if not self.red <= self.amber <= self.green:
            raise Invalid("red must be soonest, then amber, then green")
        return self


class AuditSearchSettings(ConfigModel):
    """`audit:` (read only: Audit search and Report)."""

    store: Text
    hash_key_file: File


class OidcSettings(ConfigModel):
    """`oidc:`: sign-in through the agency's identity provider (mash.console.oidc)."""

    issuer: Text
    client_id: Text
    client_secret_file: File
    redirect_uri: Text
    post_logout_redirect_uri: Text = ""
    scope: Text = "openid offline_access lookup"
    bind_tokens: Flag = False

    @model_validator(mode="after")
    def _callback(self) -> OidcSettings:
        if not self.redirect_uri.endswith("/signin/callback"):
            raise Invalid("must be this console's https://HOST/signin/callback, as "
                          "registered at the provider", key="redirect_uri")
        return self


class ConsoleSettings(ConfigModel):
    """console.yaml, as read: a plain value (see `load` for what the console starts with)."""

    listen: Annotated[Text, AfterValidator(_check_listen)]
    server_tls: ServerTlsSettings
    broker: ConsoleBroker
    tls: TlsFiles
    auth: AuthConfig
    session: SessionSettings
    ig_roles: TextList = ["ig_lead"]
    rag_hours: RagHours = RagHours()
    policy: PolicyConfig | None = None
    audit: AuditSearchSettings | None = None
    cases: CaseStoreConfig | None = None  # the case store (mash/cases/store.py)
    log_level: LogLevel = "info"
    oidc: OidcSettings | None = None
    dev_token_signin: Flag = False  # pasting a token at /signin: development only

    @model_validator(mode="after")
    def _sign_in(self) -> ConsoleSettings:
        if self.oidc is None and not self.dev_token_signin:
            raise Invalid("configure sign-in through the identity provider (oidc: ...), or "
                          "for development only set dev_token_signin: true", key="oidc")
        if self.auth.require_bound_proof and not (self.oidc is not None
                                                  and self.oidc.bind_tokens):
            # only a key the console asked the provider to bind its tokens to signs lookups
            raise Invalid("require_bound_proof needs tokens bound to the console's session "
                          "keys: set oidc.bind_tokens: true (or drop require_bound_proof)",
                          key="auth")
        return self

    @property
    def listen_address(self) -> tuple[str, int]:
        return _listen(self.listen)


# -- what the console runs with: read from the settings as it starts -------------------------


@dataclass(frozen=True)
class ServerTls:
    cert: Path
    key: Path


@dataclass(frozen=True)
class AuditSearch:
    """Read-only access to an audit store, for "who looked up this person"."""

    store: str
    base_dir: Path  # a relative sqlite:///path is relative to console.yaml
    hasher: SubjectHasher

    def open_store(self) -> AuditStore:
        return open_store(self.store, self.base_dir)


@dataclass
class ConsoleConfig:
    """The console as it starts: the settings, and what they name read (see `load`)."""

    path: Path
    listen_host: str
    listen_port: int
    server_tls: ServerTls
    broker_address: str | list[str]  # one broker, or every broker (round robin, retried)
    broker_server_name: str | None
    broker_timeout_seconds: float
    client_tls: TlsFiles
    auth: TokenVerifier
    session_secret: bytes
    session_minutes: float
    ig_roles: frozenset[str]
    # `session.store`: a database URL (SQLAlchemy form) for sessions every console shares
    # and that outlive a restart; None keeps them in this process (mash/console/sessions.py)
    session_store: str | None = None
    rag_hours: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RAG_HOURS))
    policy: PolicyConfig | None = None
    audit: AuditSearch | None = None
    cases: CaseStoreConfig | None = None  # `cases:`: the case store (mash/cases/store.py)
    log_level: str = "info"
    oidc: OidcConfig | None = None
    dev_token_signin: bool = False  # pasting a token at /signin: development only


def read_secret(path: Path) -> bytes:
    try:
        raw = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read session secret {path}: {exc.strerror}") from None
    if len(raw) < MIN_SECRET_BYTES:
        raise ConfigError(f"{path}: the session secret must be at least {MIN_SECRET_BYTES} "
                          "bytes (mash console keygen --out FILE)")
    return raw


def write_secret(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return path


def _reading(where: str, key: str, read: Callable[[], T]) -> T:
    """`read()`, a ConfigError it raises naming console.yaml, the section and the key."""
    try:
        return read()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {key}: {exc}") from None


def _server_tls(settings: ServerTlsSettings, where: str) -> ServerTls:
    # the HTTPS certificate must be a console's: a broker's would let a thief of this
    # key pose as the broker to agents and clients (mash.identity.pinning)
    try:
        own = identity_from_pem(settings.cert.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{where}: cert: cannot read {settings.cert}: {exc.strerror}") from None
    if own is None or own.kind != "console":
        raise ConfigError(f"{where}: cert: the certificate names {own or 'no MASH identity'}, "
                          "not a console: issue one with `mash certs console`")
    return ServerTls(cert=settings.cert, key=settings.key)


def _oidc(settings: OidcSettings, where: str) -> OidcConfig:
    secret = _reading(where, "client_secret_file",
                      lambda: read_secret(settings.client_secret_file))
    return OidcConfig(issuer=settings.issuer, client_id=settings.client_id,
                      client_secret=secret.decode().strip(),
                      redirect_uri=settings.redirect_uri,
                      post_logout_redirect_uri=settings.post_logout_redirect_uri,
                      scope=settings.scope, bind_tokens=settings.bind_tokens)


def read_settings(path: str | Path) -> ConsoleSettings:
    """console.yaml, checked: a plain value (nothing it names is read)."""
    return load_model(ConsoleSettings, path)


def load(path: str | Path) -> ConsoleConfig:
    """console.yaml (`read_settings`), then what it names read as the console starts: the
    HTTPS certificate's identity, the session and OIDC client secrets, the audit hash key, and
    the token verifier (the issuers' keys)."""
    settings = read_settings(path)
    host, port = settings.listen_address
    audit = None
    if settings.audit is not None:
        hash_key = settings.audit.hash_key_file
        audit = AuditSearch(settings.audit.store, Path(path).resolve().parent,
                            _reading(f"{path}: audit", "hash_key_file",
                                     lambda: SubjectHasher.from_file(hash_key)))
    secret_file = settings.session.secret_file
    return ConsoleConfig(
        path=Path(path), listen_host=host, listen_port=port,
        server_tls=_server_tls(settings.server_tls, f"{path}: server_tls"),
        broker_address=settings.broker.targets, broker_server_name=settings.broker.server_name,
        broker_timeout_seconds=settings.broker.timeout_seconds, client_tls=settings.tls,
        auth=_reading(str(path), "auth", lambda: TokenVerifier.from_config(settings.auth)),
        session_secret=_reading(f"{path}: session", "secret_file",
                                lambda: read_secret(secret_file)),
        session_minutes=settings.session.lifetime_minutes,
        session_store=settings.session.store, ig_roles=frozenset(settings.ig_roles),
        rag_hours=settings.rag_hours.model_dump(), policy=settings.policy, audit=audit,
        log_level=settings.log_level, cases=settings.cases,
        oidc=_oidc(settings.oidc, f"{path}: oidc") if settings.oidc is not None else None,
        dev_token_signin=settings.dev_token_signin)
