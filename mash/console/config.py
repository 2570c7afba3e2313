"""console.yaml: where the console listens, which broker it talks to, and how it trusts tokens."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from mash import addresses as broker_addresses
from mash import database_url
from mash.audit.store import AuditStore, open_store
from mash.audit.subject_hash import SubjectHasher
from mash.cases.store import CaseStoreConfig
from mash.config import Reader, load_yaml
from mash.console.oidc import OidcConfig
from mash.errors import ConfigError
from mash.identity.certs import identity_from_pem
from mash.identity.tls import TlsFiles
from mash.identity.tokens import TokenVerifier
from mash.policy.store import PolicyConfig

# How long an analyst has to act on a lookup, by RAG rating (hours). Red is "within hours".
DEFAULT_RAG_HOURS = {"red": 4.0, "amber": 24.0, "green": 72.0}
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class ServerTls:
    cert: Path
    key: Path

    @classmethod
    def read(cls, section: Reader) -> ServerTls:
        tls = cls(cert=section.path("cert"), key=section.path("key"))
        section.done()
        # the HTTPS certificate must be a console's: a broker's would let a thief of this
        # key pose as the broker to agents and clients (mash.identity.pinning)
        own = identity_from_pem(tls.cert.read_bytes())
        if own is None or own.kind != "console":
            raise section.error("cert", f"the certificate names {own or 'no MASH identity'}, "
                                "not a console: issue one with `mash certs console`")
        return tls


@dataclass(frozen=True)
class AuditSearch:
    """Read-only access to an audit store, for "who looked up this person"."""

    store: str
    base_dir: Path  # a relative sqlite:///path is relative to console.yaml
    hasher: SubjectHasher

    @classmethod
    def read(cls, section: Reader) -> AuditSearch:
        store = section.str("store")
        hasher = SubjectHasher.from_file(section.path("hash_key_file"))
        section.done()
        return cls(store, section.base_dir, hasher)

    def open_store(self) -> AuditStore:
        return open_store(self.store, self.base_dir)


@dataclass
class ConsoleConfig:
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


def _listen(top: Reader) -> tuple[str, int]:
    listen = top.str("listen")
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise top.error("listen", f"{listen!r} is not HOST:PORT, e.g. 127.0.0.1:8443")
    return host.strip("[]"), int(port)


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


def load(path: str | Path) -> ConsoleConfig:
    top = load_yaml(path)
    host, port = _listen(top)
    server_tls = ServerTls.read(top.section("server_tls"))
    broker = top.section("broker")
    address, server_name = broker_addresses.read(broker)  # address, or addresses: [...]
    timeout = broker.float("timeout_seconds", 15.0, minimum=0.5, maximum=120)
    broker.done()
    client_tls = TlsFiles.read(top.section("tls"))
    auth = TokenVerifier.read(top.section("auth"))
    session = top.section("session")
    secret = read_secret(session.path("secret_file"))
    minutes = session.float("lifetime_minutes", 480.0, minimum=1, maximum=24 * 60)
    session_store = None
    if session.has("store"):
        store = session.str("store")
        if not store.startswith(database_url.PREFIXES):
            raise session.error("store", database_url.EXPECTED)
        session_store = database_url.engine_url(store, session.base_dir)
    session.done()
    ig_roles = frozenset(top.str_list("ig_roles", ["ig_lead"]))
    rag = dict(DEFAULT_RAG_HOURS)
    if top.has("rag_hours"):
        section = top.section("rag_hours")
        for colour in rag:
            rag[colour] = section.float(colour, rag[colour], minimum=0.1, maximum=24 * 30)
        section.done()
        if not rag["red"] <= rag["amber"] <= rag["green"]:
            raise top.error("rag_hours", "red must be soonest, then amber, then green")
    policy = PolicyConfig.read(top.section("policy")) if top.has("policy") else None
    audit = AuditSearch.read(top.section("audit")) if top.has("audit") else None
    cases = (top.section("cases").model(CaseStoreConfig, file=str(path)) if top.has("cases")
             else None)
    log_level = top.str("log_level", "info", choices=("debug", "info", "warning", "error"))
    oidc = OidcConfig.read(top.section("oidc")) if top.has("oidc") else None
    dev_token_signin = top.bool("dev_token_signin", False)
    top.done()
    if oidc is None and not dev_token_signin:
        raise top.error("oidc", "configure sign-in through the identity provider (oidc: ...), "
                                "or for development only set dev_token_signin: true")
    if auth.require_bound_proof and not (oidc is not None and oidc.bind_tokens):
        # only a key the console asked the provider to bind its tokens to signs lookups
        raise top.error("auth", "require_bound_proof needs tokens bound to the console's "
                                "session keys: set oidc.bind_tokens: true (or drop "
                                "require_bound_proof)")
    return ConsoleConfig(
        path=Path(path), listen_host=host, listen_port=port, server_tls=server_tls,
        broker_address=address, broker_server_name=server_name,
        broker_timeout_seconds=timeout, client_tls=client_tls, auth=auth,
        session_secret=secret, session_minutes=minutes, session_store=session_store,
        ig_roles=ig_roles, rag_hours=rag,
        policy=policy, audit=audit, log_level=log_level, cases=cases, oidc=oidc,
        dev_token_signin=dev_token_signin)
