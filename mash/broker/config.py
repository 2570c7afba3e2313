"""broker.yaml: the federation as one broker sees it.

A pydantic model (mash.config.ConfigModel): a plain value, checked as it is read. Nothing is
built here: the token verifier, TLS credentials and policy store are made by the broker as
it starts (mash/broker/server.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

from pydantic import BeforeValidator, ConfigDict, Field, field_validator

from mash.audit import AuditConfig
from mash.broker.liveness import LivenessConfig
from mash.broker.ratelimit import RateLimitConfig
from mash.config import (
    AgencyId,
    ConfigModel,
    Invalid,
    LogLevel,
    Text,
    load_model,
    number,
    whole,
)
from mash.errors import ConfigError
from mash.identity.revocation import RevocationConfig
from mash.identity.tls import TlsFiles
from mash.identity.tokens import AuthConfig
from mash.policy.store import PolicyConfig


class Agency(ConfigModel):
    """One of `agencies:`."""

    model_config = ConfigDict(frozen=True)

    id: AgencyId
    name: Text = ""

    @property
    def title(self) -> str:
        """The name shown for it (the id when no name is given)."""
        return self.name or self.id


class BrokerConfig(ConfigModel):
    not_settings: ClassVar[frozenset[str]] = frozenset({"path"})

    path: Path = Path()  # the file read (set by load)
    broker_id: Text = "broker"
    listen: Text
    tls: TlsFiles
    auth: AuthConfig
    # optional once the signed bundle registers agencies (`agents:` in federation.yaml)
    listed: list[Agency] = Field(default=[], validation_alias="agencies")
    policy: PolicyConfig
    deadline_seconds: Annotated[float, BeforeValidator(number(0.1, 300))] = 10.0
    heartbeat_seconds: Annotated[float, BeforeValidator(number(0.2, 60))] = 5.0
    hello_timeout_seconds: Annotated[float, BeforeValidator(number(0.1, 120))] = 10.0
    rate_limit: RateLimitConfig = RateLimitConfig()
    liveness: LivenessConfig = LivenessConfig()
    audit: AuditConfig  # its key files are read by AuditKeys, as the service starts
    metrics_port: Annotated[int, BeforeValidator(whole(1, 65535))] | None = None
    log_level: LogLevel = "info"
    revocation: RevocationConfig | None = None  # the federation CA's CRL (optional)
    # After a start, lookups wait (health NOT_SERVING) until every agent has connected or
    # this many seconds pass; 0: serve at once (one broker). See README, Several brokers.
    wait_for_agents_seconds: Annotated[float, BeforeValidator(number(0, 600))] = 0.0

    @field_validator("listed")
    @classmethod
    def _once_each(cls, agencies: list[Agency]) -> list[Agency]:
        seen: set[str] = set()
        for i, agency in enumerate(agencies):
            if agency.id in seen:
                raise Invalid(f"{agency.id!r} is registered twice", key=f"[{i}]: id")
            seen.add(agency.id)
        return agencies

    @property
    def agencies(self) -> dict[str, Agency]:
        """The agencies configured here, by id."""
        return {a.id: a for a in self.listed}


def load(path: str | Path) -> BrokerConfig:
    """broker.yaml, checked: its settings, then that its certificate is a broker's."""
    cfg = load_model(BrokerConfig, path)
    cfg.path = Path(path)
    cfg.policy = cfg.policy.with_state_of(cfg.broker_id, Path(path).resolve().parent)
    own = cfg.tls.own_identity()
    if own is None or own.kind != "broker":
        raise ConfigError(f"{path}: tls.cert: the certificate does not identify a broker: "
                          "issue one with `mash certs broker`")
    return cfg
