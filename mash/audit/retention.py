"""Retention per agreement: purge what is past its time, and leave proof of the purge.

An entry is kept for the longest retention among its agreements (an agreement not listed, or an
entry without one, uses `default_days`; no default means kept for ever). Purging happens in two
steps, in one transaction per writer:

1. the body of each expired entry is deleted (with its search keys and notification); its
   header stays, so the chain still verifies;
2. the run of body-less entries at the start of the chain is deleted entirely, and the chain's
   new base (last deleted sequence and its hash) is recorded.

Each writer's purge is sealed by a signed "purge" checkpoint carrying the base and the cut-offs,
so `verify` accepts exactly the deletions the policy allowed. The run itself is recorded as a
"purge" entry in the purging writer's chain (who ran it, how much went).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from mash.audit.chain import Head, format_time
from mash.audit.checkpoint import SignedCheckpoint
from mash.audit.entry import AuditEntry
from mash.audit.log import AuditLog
from mash.audit.store import AuditStore, PurgeResult


@dataclass(frozen=True)
class RetentionPolicy:
    default_days: int | None = None
    agreements: dict[str, int] = field(default_factory=dict)

    def days_for(self, agreements: tuple[str, ...]) -> int | None:
        """Days an entry under these agreements is kept; None: for ever."""
        values = [self.agreements.get(a, self.default_days) for a in agreements]
        values = values or [self.default_days]
        if any(v is None for v in values):
            return None
        return max(v for v in values if v is not None)

    def cutoffs(self, now: dt.datetime) -> dict[str, str]:
        """Agreement id ("*" for the default) -> entries recorded before it are due."""
        out = {a: format_time(now - dt.timedelta(days=d)) for a, d in self.agreements.items()}
        if self.default_days is not None:
            out["*"] = format_time(now - dt.timedelta(days=self.default_days))
        return out

    @property
    def purges_anything(self) -> bool:
        return self.default_days is not None or bool(self.agreements)


@dataclass(frozen=True)
class PurgeRun:
    results: tuple[PurgeResult, ...]
    recorded: AuditEntry | None

    @property
    def purged(self) -> int:
        return sum(r.purged for r in self.results)

    @property
    def deleted(self) -> int:
        return sum(r.deleted for r in self.results)


def _due(policy: RetentionPolicy, now: dt.datetime) -> Callable[[str, tuple[str, ...]], bool]:
    def due(recorded_at: str, agreements: tuple[str, ...]) -> bool:
        days = policy.days_for(agreements)
        return days is not None and recorded_at < format_time(now - dt.timedelta(days=days))

    return due


def preview(store: AuditStore, policy: RetentionPolicy,
            now: dt.datetime | None = None) -> dict[str, int]:
    """How many entries a purge now would empty, per writer (changes nothing)."""
    due = _due(policy, now or dt.datetime.now(dt.UTC))
    return {w: sum(1 for row in store.iter_entries(w)
                   if row.body is not None and due(row.recorded_at, row.agreements))
            for w in store.writers()}


def purge(log: AuditLog, policy: RetentionPolicy, operator: str,
          now: dt.datetime | None = None, writers: list[str] | None = None) -> PurgeRun:
    """Purge every writer's chain in `log.store` (or the listed writers) under `policy`."""
    now = now or dt.datetime.now(dt.UTC)
    if not policy.purges_anything:
        return PurgeRun((), None)
    cutoffs = policy.cutoffs(now)
    latest = max(cutoffs.values())
    due = _due(policy, now)
    results = []
    for writer in writers if writers is not None else log.store.writers():
        def seal(head: Head, base_seq: int, base_hash: str, purged: int,
                 base_frontier: tuple[str, ...] | None,
                 writer: str = writer) -> SignedCheckpoint:
            return log.sign("purge", writer, head, base_seq=base_seq, base_hash=base_hash,
                            cutoffs=cutoffs, purged=purged,
                            base_frontier=None if base_frontier is None else list(base_frontier))

        results.append(log.store.purge(writer, latest, due, seal))
    done = [r for r in results if r.purged]
    entry = None
    if done:
        detail = "; ".join(f"{r.writer_id}: {r.purged} entries purged, chain starts after "
                           f"seq {r.base_seq}" for r in done)
        entry = AuditEntry(event="purge", requester=operator, purpose="retention",
                           justification="entries past the retention period of their agreement",
                           detail=detail)
        log.append(entry)
    return PurgeRun(tuple(results), entry)
