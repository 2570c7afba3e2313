"""The agent's loaded records: the matcher over them and how current they are."""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from mash.agent.sources import LoadedSource, SourceConfig, SourceError, load_source
from mash.answers import timestamp
from mash.logs import get_logger
from mash.matching import Matcher, persist
from mash.matching.index import build
from mash.v1 import answer_pb2

log = get_logger(__name__)


@dataclass
class Snapshot:
    """One consistent load of every source. Replaced whole, never edited in place."""

    matcher: Matcher
    sources: list[LoadedSource]
    loaded_at: dt.datetime
    fingerprint: str = ""
    index_reused: bool = False

    @property
    def as_at(self) -> dt.datetime:
        """The oldest source's as-at time: the answer is only as current as that."""
        return min(s.as_at for s in self.sources)

    # Every answer carries these; a snapshot never changes, so they are built once (protobuf's
    # datetime conversion is Python code, and cost more per query than some of the search).
    @functools.cached_property
    def as_at_proto(self) -> Timestamp:
        """`as_at` as a protobuf Timestamp (copy it into a message; do not modify it)."""
        return timestamp(self.as_at)

    @functools.cached_property
    def sources_proto(self) -> tuple[answer_pb2.SourceSummary, ...]:
        """One summary per source, as answers and hellos list them (copy, do not modify)."""
        return tuple(answer_pb2.SourceSummary(name=s.name, as_at=timestamp(s.as_at),
                                              record_count=len(s.records))
                     for s in self.sources)

    @property
    def record_count(self) -> int:
        return len(self.matcher)


def load_snapshot(sources: list[SourceConfig], index_path: Path | None = None,
                  progress: Callable[[int], None] | None = None) -> Snapshot:
    """Read every source and index it, reusing the saved index at ``index_path`` when it
    was built from exactly these sources (and saving a fresh one when it was not)."""
    try:
        source_fingerprint = persist.fingerprint(sources)
    except Exception as exc:  # e.g. a database that refuses COUNT(*): index, do not persist
        log.warning("sources_fingerprint_failed", reason=type(exc).__name__)
        source_fingerprint, index_path = "", None
    loaded = [load_source(s) for s in sources]
    records = [r for source in loaded for r in source.records]
    index = persist.load(index_path, source_fingerprint) if index_path else None
    reused = index is not None and len(index) == len(records)
    if not reused:
        started = time.monotonic()
        index = build(records, progress)
        log.info("index_built", records=len(records),
                 seconds=round(time.monotonic() - started, 3))
        if index_path:
            persist.save(index, index_path, source_fingerprint)
    else:
        log.info("index_reused", records=len(records))
    assert index is not None
    return Snapshot(Matcher(records, index=index), loaded, dt.datetime.now(dt.UTC),
                    source_fingerprint, reused)


@dataclass
class AgentState:
    snapshot: Snapshot | None = None
    error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Run on each new snapshot before it is published (the blind token index is built here,
    # so that an agent reports ready only once it can answer every kind of query at speed).
    prepare: Callable[[Snapshot], None] | None = None

    @property
    def ready(self) -> bool:
        return self.snapshot is not None

    def load(self, sources: list[SourceConfig], index_path: Path | None = None) -> None:
        """Load every source and swap the snapshot in; keep the old one if loading fails."""
        try:
            snapshot = load_snapshot(sources, index_path)
            if self.prepare is not None:
                self.prepare(snapshot)
        except SourceError as exc:
            with self._lock:
                self.error = str(exc)
            log.error("sources_load_failed", reason=str(exc))
            return
        with self._lock:
            self.snapshot = snapshot
            self.error = None
        log.info("records_indexed", records=snapshot.record_count, sources=len(sources))

    def refresh(self, sources: list[SourceConfig], index_path: Path | None = None) -> bool:
        """Reload when the sources' fingerprint has changed; True when it reloaded."""
        current = self.snapshot
        try:
            changed = current is None or persist.fingerprint(sources) != current.fingerprint
        except Exception as exc:  # a database that is down: keep serving the last snapshot
            log.warning("sources_fingerprint_failed", reason=type(exc).__name__)
            return False
        if changed:
            log.info("sources_changed")
            self.load(sources, index_path)
        return changed
