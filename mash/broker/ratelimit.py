"""Per-analyst rate limits, so nobody can enumerate the population through lookups.

A token bucket per analyst (issuer + subject): `burst` lookups at once, refilled at
`per_minute`. Without `store`, the limit is per broker process (right for one broker); with
`store` (a PostgreSQL URL) every broker shares one bucket per analyst (shared_limits.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import BeforeValidator, ConfigDict, Field, field_validator

from mash.config import ConfigModel, Invalid, Text, number, whole

# The clock buckets refill by (monotonic seconds); a test holds it still to read exact waits.
clock: Callable[[], float] = time.monotonic


class RateLimitConfig(ConfigModel):
    """broker.yaml `rate_limit:`."""

    model_config = ConfigDict(frozen=True)

    per_minute: Annotated[float, BeforeValidator(number(0.1, 100_000))] = Field(
        default=30.0, validation_alias="lookups_per_minute")
    burst: Annotated[int, BeforeValidator(whole(1, 100_000))] = 10
    store: Text | None = None  # postgresql://... : shared by every broker

    @field_validator("store")
    @classmethod
    def _postgresql(cls, store: str | None) -> str | None:
        if store is not None and not store.startswith(("postgresql://", "postgres://")):
            raise Invalid("expected a PostgreSQL URL such as "
                          "postgresql://mash@db/mash?schema=mash_limits")
        return store


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    config: RateLimitConfig
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, who: str, now: float | None = None) -> float:
        """0 when a lookup may go ahead; otherwise the seconds until one may."""
        now = clock() if now is None else now
        rate = self.config.per_minute / 60.0
        with self._lock:
            bucket = self._buckets.get(who)
            if bucket is None:
                bucket = self._buckets[who] = _Bucket(float(self.config.burst), now)
            bucket.tokens = min(self.config.burst,
                                bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / rate
