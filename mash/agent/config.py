"""agent.yaml: everything an agency's IT sets to run an agent."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mash import addresses as brokers
from mash.agent.sources import SourceConfig, check_config
from mash.audit import AuditConfig
from mash.blind.config import BlindAgentConfig
from mash.config import Reader, load_yaml
from mash.errors import ConfigError
from mash.identity.names import check_agency_id
from mash.identity.pinning import BrokerPins
from mash.identity.revocation import RevocationConfig
from mash.identity.tls import TlsFiles
from mash.identity.tokens import TokenVerifier
from mash.policy.store import PolicyConfig
from mash.subject import EVIDENCE


@dataclass
class AgentConfig:
    path: Path
    agency: str
    name: str
    brokers: list[str]  # every broker's host:port, as configured (see mash.agent.brokers)
    broker_server_name: str | None
    tls: TlsFiles
    auth: TokenVerifier
    contact_route: str
    sources: list[SourceConfig]
    minimum: tuple[frozenset[str], ...] | None  # search.require_any_of (None: evidence only)
    max_matches: int
    policy: PolicyConfig
    audit: AuditConfig
    hmac_key: bytes
    heartbeat_seconds: float
    reconnect_initial_seconds: float
    reconnect_max_seconds: float
    health_listen: str | None
    metrics_port: int | None
    log_level: str
    index_path: Path | None = None  # where the match index is saved (None: in memory only)
    refresh_seconds: float = 0.0  # how often to look for changed sources (0: never)
    blind: BlindAgentConfig | None = None
    broker_pins: BrokerPins = field(default_factory=BrokerPins)  # broker.identities
    revocation: RevocationConfig | None = None  # the federation CA's CRL (optional)
    target_false_known: float = 0.001  # what the index's thresholds are calibrated for

    @property
    def field_names(self) -> set[str]:
        names: set[str] = set()
        for source in self.sources:
            names |= source.mapping.field_names
        return names


def _minimum(section: Reader) -> tuple[frozenset[str], ...] | None:
    raw = section.list("require_any_of", None)
    if raw is None:
        return None
    rules = []
    for i, rule in enumerate(raw):
        if not isinstance(rule, list) or not rule:
            raise section.error(f"require_any_of[{i}]",
                                "expected a list such as [name, date_of_birth]")
        unknown = set(rule) - EVIDENCE
        if unknown:
            raise section.error(
                f"require_any_of[{i}]",
                f"unknown evidence {', '.join(sorted(map(str, unknown)))} "
                f"(known: {', '.join(sorted(EVIDENCE))})")
        rules.append(frozenset(rule))
    return tuple(rules)


def load(path: str | Path) -> AgentConfig:
    top = load_yaml(path)
    agency = top.str("agency")
    try:
        check_agency_id(agency)
    except Exception as exc:
        raise top.error("agency", str(exc)) from None
    tls = TlsFiles.read(top.section("tls"))
    own = tls.own_identity()
    if own is None or own.kind != "agent" or own.name != agency:
        raise top.error(
            "tls.cert",
            f"the certificate does not identify the agent of {agency!r} "
            f"(it names {own.uri if own else 'no MASH identity'}); issue one with "
            f"`mash certs issue --agency {agency}`")
    search = top.section("search", required=False)
    minimum = _minimum(search)
    max_matches = search.int("max_matches", 10, minimum=1, maximum=100)
    target_false_known = search.float("target_false_known", 0.001, minimum=1e-5, maximum=0.05)
    search.done()
    hmac_key = b""
    if top.has("hmac_key_file"):
        key_path = top.path("hmac_key_file")
        hmac_key = key_path.read_bytes().strip()
        if len(hmac_key) < 32:
            raise top.error("hmac_key_file", "the key must be at least 32 bytes")
    index = top.section("index", required=False)
    index_path = index.path("path", None, must_exist=False)
    refresh_seconds = index.float("refresh_seconds", 0.0, minimum=0, maximum=86400)
    index.done()
    sources = [SourceConfig.read(s) for s in top.sections("sources")]
    if not sources:
        raise top.error("sources", "at least one source of records is required")
    check_config(sources)
    broker = top.section("broker")
    addresses, server_name = brokers.read(broker)
    pins = BrokerPins.read(broker)
    heartbeat = broker.float("heartbeat_seconds", 5.0, minimum=0.2, maximum=60)
    initial = broker.float("reconnect_initial_seconds", 0.5, minimum=0.05, maximum=60)
    maximum = broker.float("reconnect_max_seconds", 30.0, minimum=0.1, maximum=600)
    broker.done()
    cfg = AgentConfig(
        path=Path(path),
        agency=agency,
        name=top.str("name", agency),
        brokers=addresses,
        broker_server_name=server_name,
        broker_pins=pins,
        tls=tls,
        auth=TokenVerifier.read(top.section("auth")),
        contact_route=top.str("contact_route"),
        sources=sources,
        minimum=minimum,
        max_matches=max_matches,
        target_false_known=target_false_known,
        policy=PolicyConfig.read(top.section("policy"), agency),
        audit=AuditConfig.read(top.section("audit")),
        hmac_key=hmac_key,
        heartbeat_seconds=heartbeat,
        reconnect_initial_seconds=initial,
        reconnect_max_seconds=max(maximum, initial),
        health_listen=top.str("health_listen", None),
        metrics_port=top.int("metrics_port", None, minimum=1, maximum=65535),
        log_level=top.str("log_level", "info", choices=("debug", "info", "warning", "error")),
        index_path=index_path,
        refresh_seconds=refresh_seconds,
        blind=(BlindAgentConfig.read(top.section("blind"), agency) if top.has("blind")
               else None),
        revocation=(RevocationConfig.read(top.section("revocation"))
                    if top.has("revocation") else None),
    )
    top.done()
    if not cfg.contact_route:
        raise ConfigError(f"{path}: contact_route must say how the MASH reaches this agency")
    return cfg
