"""agent.yaml: everything an agency's IT sets to run an agent.

A pydantic model (mash.config.ConfigModel): a plain value, checked as it is read. Nothing is
built or read here beyond the file itself and the certificate's identity: the token
verifier, the HMAC key and the policy store are made by the agent as it starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, field_validator

from mash.addresses import BrokerAddresses
from mash.agent.sources import SourceConfig, check_config
from mash.audit import AuditConfig
from mash.blind.config import BlindAgentConfig
from mash.config import (
    AgencyId,
    ConfigModel,
    File,
    Invalid,
    LogLevel,
    NewFile,
    Text,
    load_model,
    number,
    whole,
)
from mash.errors import ConfigError
from mash.identity.pinning import BrokerPins
from mash.identity.revocation import RevocationConfig
from mash.identity.tls import TlsFiles
from mash.identity.tokens import AuthConfig
from mash.policy.store import PolicyConfig
from mash.subject import EVIDENCE

MIN_HMAC_KEY_BYTES = 32


def _require_any_of(value: Any) -> tuple[frozenset[str], ...]:
    if not isinstance(value, list):
        raise Invalid(f"expected a list, got {type(value).__name__}")
    rules = []
    for i, rule in enumerate(value):
        if not isinstance(rule, list) or not rule:
            raise Invalid("expected a list such as [name, date_of_birth]", key=f"[{i}]")
        unknown = set(rule) - EVIDENCE
        if unknown:
            raise Invalid(f"unknown evidence {', '.join(sorted(map(str, unknown)))} "
                          f"(known: {', '.join(sorted(EVIDENCE))})", key=f"[{i}]")
        rules.append(frozenset(rule))
    return tuple(rules)


Rules = Annotated[tuple[frozenset[str], ...], BeforeValidator(_require_any_of)]


class SearchConfig(ConfigModel):
    """agent.yaml `search:`."""

    require_any_of: Rules | None = None  # None: evidence only
    max_matches: Annotated[int, BeforeValidator(whole(1, 100))] = 10
    # what the index's thresholds are calibrated for
    target_false_known: Annotated[float, BeforeValidator(number(1e-5, 0.05))] = 0.001


class IndexConfig(ConfigModel):
    """agent.yaml `index:`."""

    path: NewFile | None = None  # where the match index is saved (None: in memory only)
    # how often to look for changed sources (0: never)
    refresh_seconds: Annotated[float, BeforeValidator(number(0, 86400))] = 0.0
    # worker processes that map and index a large full load (0: one per CPU); the first
    # 100,000 rows of a load are done in the agent's own process
    build_workers: Annotated[int, BeforeValidator(whole(0, 64))] = 0


class AgentBrokerConfig(BrokerAddresses):
    """agent.yaml `broker:`: where the brokers are, which identities they may have, and the
    stream's timings."""

    identities: Annotated[BrokerPins, BeforeValidator(BrokerPins.validate)] = BrokerPins()
    heartbeat_seconds: Annotated[float, BeforeValidator(number(0.2, 60))] = 5.0
    reconnect_initial_seconds: Annotated[float, BeforeValidator(number(0.05, 60))] = 0.5
    reconnect_max_seconds: Annotated[float, BeforeValidator(number(0.1, 600))] = 30.0


class AgentConfig(ConfigModel):
    not_settings: ClassVar[frozenset[str]] = frozenset({"path"})

    path: Path = Path()  # the file read (set by load)
    agency: AgencyId
    name: Text = ""  # default: the agency id
    tls: TlsFiles
    auth: AuthConfig
    contact_route: Text
    sources: list[SourceConfig]
    search: SearchConfig = SearchConfig()
    policy: PolicyConfig
    audit: AuditConfig  # its key files are read by AuditKeys, as the service starts
    hmac_key_file: File | None = None  # read by the agent as it starts (hmac_key)
    broker: AgentBrokerConfig
    index: IndexConfig = IndexConfig()
    health_listen: Text | None = None
    metrics_port: Annotated[int, BeforeValidator(whole(1, 65535))] | None = None
    log_level: LogLevel = "info"
    blind: BlindAgentConfig | None = None  # keys read by BlindAgentKeys as the agent starts
    revocation: RevocationConfig | None = None  # the federation CA's CRL (optional)

    @field_validator("sources")
    @classmethod
    def _sources(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        if not sources:
            raise Invalid("at least one source of records is required")
        try:
            check_config(sources)
        except ConfigError as exc:
            raise Invalid(str(exc)) from None
        return sources

    def model_post_init(self, context: Any, /) -> None:
        if not self.name:
            self.name = self.agency

    # The settings as the agent uses them (the file groups them in sections).
    @property
    def brokers(self) -> list[str]:
        """Every broker's host:port, as configured (see mash.agent.brokers)."""
        return self.broker.targets

    @property
    def broker_server_name(self) -> str | None:
        return self.broker.server_name

    @property
    def broker_pins(self) -> BrokerPins:  # broker.identities
        return self.broker.identities

    @property
    def heartbeat_seconds(self) -> float:
        return self.broker.heartbeat_seconds

    @property
    def reconnect_initial_seconds(self) -> float:
        return self.broker.reconnect_initial_seconds

    @property
    def reconnect_max_seconds(self) -> float:
        return max(self.broker.reconnect_max_seconds, self.broker.reconnect_initial_seconds)

    @property
    def minimum(self) -> tuple[frozenset[str], ...] | None:  # search.require_any_of
        return self.search.require_any_of

    @property
    def max_matches(self) -> int:
        return self.search.max_matches

    @property
    def target_false_known(self) -> float:
        return self.search.target_false_known

    @property
    def index_path(self) -> Path | None:
        return self.index.path

    @property
    def refresh_seconds(self) -> float:
        return self.index.refresh_seconds

    @property
    def field_names(self) -> set[str]:
        names: set[str] = set()
        for source in self.sources:
            names |= source.mapping.field_names
        return names


def hmac_key(cfg: AgentConfig) -> bytes:
    """The key of the keyed-hash transform (`hmac_key_file`), read as the agent starts;
    empty without one."""
    if cfg.hmac_key_file is None:
        return b""
    try:
        key = cfg.hmac_key_file.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"{cfg.path}: hmac_key_file: cannot read {cfg.hmac_key_file}: "
                          f"{exc.strerror}") from None
    if len(key) < MIN_HMAC_KEY_BYTES:
        raise ConfigError(f"{cfg.path}: hmac_key_file: the key must be at least "
                          f"{MIN_HMAC_KEY_BYTES} bytes")
    return key


def load(path: str | Path) -> AgentConfig:
    """agent.yaml, checked: its settings, then that its certificate is this agency's agent's."""
    cfg = load_model(AgentConfig, path)
    cfg.path = Path(path)
    cfg.policy = cfg.policy.with_state_of(cfg.agency, Path(path).resolve().parent)
    own = cfg.tls.own_identity()
    if own is None or own.kind != "agent" or own.name != cfg.agency:
        raise ConfigError(
            f"{path}: tls.cert: the certificate does not identify the agent of {cfg.agency!r} "
            f"(it names {own.uri if own else 'no MASH identity'}); issue one with "
            f"`mash certs issue --agency {cfg.agency}`")
    return cfg
