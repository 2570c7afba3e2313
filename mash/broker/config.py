"""broker.yaml: the federation as one broker sees it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mash.audit import AuditConfig
from mash.broker.liveness import LivenessConfig
from mash.broker.ratelimit import RateLimitConfig
from mash.config import load_yaml
from mash.errors import IdentityError
from mash.identity.names import check_agency_id
from mash.identity.revocation import RevocationConfig
from mash.identity.tls import TlsFiles
from mash.identity.tokens import TokenVerifier
from mash.policy.store import PolicyConfig


@dataclass(frozen=True)
class Agency:
    id: str
    name: str


@dataclass
class BrokerConfig:
    path: Path
    broker_id: str
    listen: str
    tls: TlsFiles
    auth: TokenVerifier
    agencies: dict[str, Agency]
    policy: PolicyConfig
    deadline_seconds: float
    heartbeat_seconds: float
    hello_timeout_seconds: float
    rate_limit: RateLimitConfig
    liveness: LivenessConfig
    audit: AuditConfig
    metrics_port: int | None
    log_level: str
    revocation: RevocationConfig | None = None  # the federation CA's CRL (optional)
    # After a start, lookups wait (health NOT_SERVING) until every agent has connected or
    # this many seconds pass; 0: serve at once (one broker). See README, Several brokers.
    wait_for_agents_seconds: float = 0.0


def load(path: str | Path) -> BrokerConfig:
    top = load_yaml(path)
    agencies: dict[str, Agency] = {}
    # optional once the signed bundle registers agencies (`agents:` in federation.yaml)
    for a in top.sections("agencies", required=False):
        agency_id = a.str("id")
        try:
            check_agency_id(agency_id)
        except IdentityError as exc:
            raise a.error("id", str(exc)) from None
        if agency_id in agencies:
            raise a.error("id", f"{agency_id!r} is registered twice")
        agencies[agency_id] = Agency(agency_id, a.str("name", agency_id))
        a.done()
    broker_id = top.str("broker_id", "broker")
    cfg = BrokerConfig(
        path=Path(path),
        broker_id=broker_id,
        listen=top.str("listen"),
        tls=TlsFiles.read(top.section("tls")),
        auth=TokenVerifier.read(top.section("auth")),
        agencies=agencies,
        policy=PolicyConfig.read(top.section("policy"), broker_id),
        deadline_seconds=top.float("deadline_seconds", 10.0, minimum=0.1, maximum=300),
        heartbeat_seconds=top.float("heartbeat_seconds", 5.0, minimum=0.2, maximum=60),
        hello_timeout_seconds=top.float("hello_timeout_seconds", 10.0, minimum=0.1, maximum=120),
        rate_limit=RateLimitConfig.read(top.section("rate_limit", required=False)),
        liveness=LivenessConfig.read(top.section("liveness", required=False)),
        audit=AuditConfig.read(top.section("audit")),
        metrics_port=top.int("metrics_port", None, minimum=1, maximum=65535),
        log_level=top.str("log_level", "info", choices=("debug", "info", "warning", "error")),
        revocation=(RevocationConfig.read(top.section("revocation"))
                    if top.has("revocation") else None),
        wait_for_agents_seconds=top.float("wait_for_agents_seconds", 0.0, minimum=0,
                                          maximum=600),
    )
    own = cfg.tls.own_identity()
    if own is None or own.kind != "broker":
        raise top.error("tls.cert", "the certificate does not identify a broker: issue one with "
                                    "`mash certs broker`")
    top.done()
    return cfg

