"""The agent's loaded records: the matcher over them and how current they are."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field

from mash.agent.sources import LoadedSource, SourceConfig, SourceError, load_source
from mash.logs import get_logger
from mash.matching import Matcher

log = get_logger(__name__)


@dataclass
class Snapshot:
    """One consistent load of every source. Replaced whole, never edited in place."""

    matcher: Matcher
    sources: list[LoadedSource]
    loaded_at: dt.datetime

    @property
    def as_at(self) -> dt.datetime:
        """The oldest source's as-at time: the answer is only as current as that."""
        return min(s.as_at for s in self.sources)

    @property
    def record_count(self) -> int:
        return len(self.matcher)


@dataclass
class AgentState:
    snapshot: Snapshot | None = None
    error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def ready(self) -> bool:
        return self.snapshot is not None

    def load(self, sources: list[SourceConfig]) -> None:
        """Load every source and swap the snapshot in; keep the old one if loading fails."""
        try:
            loaded = [load_source(s) for s in sources]
        except SourceError as exc:
            with self._lock:
                self.error = str(exc)
            log.error("sources_load_failed", reason=str(exc))
            return
        matcher = Matcher(r for source in loaded for r in source.records)
        with self._lock:
            self.snapshot = Snapshot(matcher, loaded, dt.datetime.now(dt.UTC))
            self.error = None
        log.info("records_indexed", records=len(matcher), sources=len(loaded))
