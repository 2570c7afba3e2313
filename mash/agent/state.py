"""The agent's loaded records: the matcher over them and how current they are.

A snapshot holds the match index (memory-mapped from its saved file when index.path is set)
and its calibration, and the records themselves in its record store on disk
(record_store.py), from which an answer reads the few it matched. A load streams the sources
into the index and the store (no list of every record is held, `stream_snapshot`); a start on
sources unchanged since the index was saved reads none of them (`open_saved`). A refresh of
SQL sources with an as-at (updated-at) column reads only the rows changed since the full
load and applies them beside its index (`apply_changes`): the saved index stays as it is;
what the changes cannot show (rows deleted), or too many of them, means a full load.

A load of the sources replaces the records answered from only when it is complete and
plausible (see plausibility.py and sources/files.py); otherwise the agent keeps answering
from the last good load, with its as-at time, and says so in its health, metrics, log and
status. With no good load at all it answers NOT_CHECKED (data unavailable) and is not ready.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import itertools
import json
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from mash.agent import memory, plausibility
from mash.agent.plausibility import Counts, Refusal
from mash.agent.prepare import Job, Prepared, Preparer
from mash.agent.record_store import (
    RecordStore,
    StoreWriter,
    encode,
    remove_others,
    store_dir,
    store_path,
)
from mash.agent.sources import (
    LoadedSource,
    Problem,
    RowBatches,
    SourceConfig,
    SourceError,
    count_present,
    open_changed,
)
from mash.answers import timestamp
from mash.logs import get_logger
from mash.matching import Matcher, caches, persist
from mash.matching.calibration import TARGET_FALSE_KNOWN, calibrate, still_fits
from mash.matching.delta import LayeredMatcher, on_base
from mash.matching.index import IndexBuilder, MatchIndex, build
from mash.matching.model import MatchModel
from mash.records import PersonRecord
from mash.v1 import answer_pb2

log = get_logger(__name__)
# A load keeps at most twice this many of its records, for the calibration (see _Sample).
CALIBRATION_SAMPLE = 200_000
PROGRESS_EVERY = 500_000  # records between two index_progress log lines
# An incremental refresh (`AgentState.refresh`) applies at most this share of the full
# load's records as changes; past it the sources are read again in full (a new index, its
# term frequencies and its calibration made afresh, the changes' memory freed).
MAX_CHANGED_SHARE = 0.05
# It reads the rows whose as-at value is at or after the full load's as-at less this: a row
# whose transaction commits up to this long after the time it stamps is still seen.
REREAD = dt.timedelta(minutes=5)
# A full load older than this is not added to: the next refresh of changed sources reads
# them in full (an edit in place that left the as-at column as it was is then seen, and the
# index and its calibration are made afresh).
FULL_LOAD_EVERY = dt.timedelta(hours=24)


@dataclass
class Snapshot:
    """One consistent load of every source. Replaced whole, never edited in place."""

    matcher: Matcher  # the index and its model; its records are read from `store`
    sources: list[LoadedSource]  # each load's counts and as-at time (no records)
    loaded_at: dt.datetime
    store: RecordStore
    fingerprint: str = ""  # the sources as read (persist.fingerprint): "" when not known
    index_reused: bool = False
    changes: Changes | None = None  # applied to a full load by an incremental refresh
    built_at: dt.datetime | None = None  # when its index was built (None: at loaded_at)

    @property
    def base(self) -> Snapshot:
        """The full load this snapshot is (or its changes apply to)."""
        return self.changes.base if self.changes is not None else self

    @property
    def stores(self) -> list[Path]:
        """Every record store this snapshot answers from."""
        return [self.store.path] + ([self.changes.store.path] if self.changes else [])

    def records(self) -> Iterator[PersonRecord]:
        """Every record it answers from: the full load's, each changed one in its newest
        version instead (the blind token index is built from these)."""
        if self.changes is None:
            yield from self.store.records()
            return
        masked = set(self.changes.masked.tolist())
        for row, record in enumerate(self.store.records()):
            if row not in masked:
                yield record
        yield from self.changes.store.records()

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
                                              record_count=s.record_count)
                     for s in self.sources)

    @property
    def record_count(self) -> int:
        return len(self.matcher)

    def counts(self) -> dict[str, Counts]:
        return {s.name: Counts.of(s) for s in self.sources}


@dataclass
class Changes:
    """The rows changed since a full load (`base`), applied to it without rebuilding it: their
    records (by delta row) in `store`, the base rows they replace in `masked`."""

    base: Snapshot
    store: RecordStore
    masked: np.ndarray  # sorted base rows no longer answered from
    added: int  # records new since the base (the rest replace one of its records)


def _refusal(exc: Exception, doing: str) -> Refusal:
    """A load that raised: a source's own refusal as it is, anything else LOAD_FAILED by
    the exception's type (logged by type and place, never by its message)."""
    if isinstance(exc, SourceError):
        return Refusal(exc.problem, str(exc), exc.source)
    log.error("sources_load_error", error=type(exc).__name__, at=_where(exc))
    return Refusal(Problem.LOAD_FAILED,
                   f"the agent failed while {doing} ({type(exc).__name__})")


def _fingerprint(sources: list[SourceConfig]) -> str | None:
    """The sources' fingerprint now, or None when a source cannot say (gone, unreadable or
    down: the full load that follows says which)."""
    try:
        return persist.fingerprint(sources)
    except Exception as exc:
        log.warning("sources_fingerprint_failed", error=type(exc).__name__)
        return None


def _where(exc: BaseException) -> str:
    """Where an exception was raised (file:line), for a log line that must not carry its
    message (which may quote a value)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""


def _digests_before(sources: list[SourceConfig]) -> dict[str, dict[str, Any]] | None:
    """A database's part of the fingerprint, taken before its read (None when one will not
    say: the fingerprint is then not known). A file's is taken as it is read."""
    before: dict[str, dict[str, Any]] = {}
    known = True
    for cfg in sources:
        if cfg.type != "csv":
            try:
                before[cfg.name] = persist.source_digest(cfg)
            except Exception as exc:  # the read says what is wrong, if anything is
                log.warning("sources_fingerprint_failed", source=cfg.name,
                            error=type(exc).__name__)
                known = False
    return before if known else None


def store_key(sources: list[SourceConfig], index_key: str) -> str:
    """The record store's content key: the index's, and everything else of each mapping that
    shapes the values a record releases (agency fields, date formats, joined columns)."""
    doc = [index_key, [(cfg.name, dataclasses.asdict(cfg.mapping)) for cfg in sources]]
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


class _Sample:
    """The records calibration draws on, kept as they stream past: every one up to
    2 x CALIBRATION_SAMPLE, then every other one of those and every 2nd after, and so on
    (records at a position in the load, counted in rows read, that is a multiple of the
    stride), so that memory stays bounded whatever the load. A worker picks the candidates
    at the stride it was sent with (a divisor of today's: a superset)."""

    def __init__(self) -> None:
        self.records: list[PersonRecord] = []
        self.rows: list[int] = []
        self.stride = 1

    def offer(self, position: int, row: int, record: PersonRecord) -> None:
        if position % self.stride:
            return
        self.records.append(record)
        self.rows.append(row)
        if len(self.records) >= 2 * CALIBRATION_SAMPLE:
            del self.records[1::2], self.rows[1::2]
            self.stride *= 2


def stream_snapshot(sources: list[SourceConfig], index_path: Path | None = None,
                    progress: Callable[[int], None] | None = None, *,
                    check: Callable[[list[LoadedSource]], Refusal | None] | None = None,
                    target_false_known: float = TARGET_FALSE_KNOWN,
                    workers: int = 0, parallel_from: int | None = None
                    ) -> tuple[Snapshot | None, LoadedLoad]:
    """Read every source once, in batches of rows that are mapped, indexed and written to
    the record store being built (neither complete nor used until the read is; no list of
    every record is held), keeping only a bounded sample for the calibration; past
    ``parallel_from`` rows (default PARALLEL_FROM) the batches are prepared by ``workers``
    processes (0: one per CPU; see `mash.agent.prepare`). Then `check` the load's counts
    (a refusal: the new store is deleted, no snapshot); reuse the index and calibration saved at
    ``index_path`` when they were made from exactly this content (else save the fresh
    ones, and serve the index memory-mapped from its file); and the store of exactly this
    load if one is already whole. ``progress(rows)`` after each batch, and an
    ``index_progress`` log line every PROGRESS_EVERY records (counts only)."""
    before = _digests_before(sources)
    loads: list[LoadedSource] = []
    writer = StoreWriter(store_dir(index_path))
    sample = _Sample()
    builder = IndexBuilder()
    started = time.monotonic()
    position = 0

    def add(done: Prepared, loaded: LoadedSource) -> None:
        loaded.absorb(done.mapped)
        first_row = builder.rows
        writer.add_encoded(done.stored)
        builder.add(done.shard)
        for offset, at, record in done.sample:
            sample.offer(at, first_row + offset, record)
        if builder.rows // PROGRESS_EVERY > first_row // PROGRESS_EVERY:
            log.info("index_progress", records=builder.rows, in_workers=preparer.parallel,
                     seconds=round(time.monotonic() - started, 1))
        if progress is not None:
            progress(builder.rows)

    try:
        with Preparer(workers, parallel_from) as preparer:
            for cfg in sources:
                loaded = LoadedSource(cfg.name, [], dt.datetime.now(dt.UTC), 0)
                loads.append(loaded)
                batches = RowBatches(cfg, loaded)
                for first, rows in batches:
                    job = Job(cfg.mapping, cfg.name, first, rows, position, sample.stride)
                    position += len(rows)
                    for done in preparer.submit(job):
                        add(done, loaded)
                for done in preparer.drain():
                    add(done, loaded)
                batches.finish()
        built = builder.finish()
    except BaseException:
        writer.abort()
        raise
    total = writer.count
    log.info("index_built", records=total, seconds=round(time.monotonic() - started, 3))
    if before is not None:
        for one in loads:
            if one.file_digest is not None:
                before[one.name] = one.file_digest.as_dict()
    source_fingerprint = persist.fingerprint(sources, before) if before is not None else ""
    load = LoadedLoad(loads, source_fingerprint,
                      check(loads) if check is not None else None)
    if load.refusal is not None:
        writer.abort()
        return None, load
    try:
        finished = _finish(sources, load, built, sample, writer, index_path,
                           target_false_known=target_false_known)
    except BaseException:
        writer.abort()
        raise
    # A fresh index is served from its file, mapped, as a restart would serve it. Read back
    # only once nothing of the load is left (the built index, its builder's interner, what
    # the load cached): Python hands an arena of its heap back only when it is empty, and
    # what is read back would otherwise fill the gaps the load left, keeping every arena it
    # touched (at 10,000,000 records, 6.5 GB serving after a first build, 3.8 after a start).
    del built  # (the builder holds nothing of it: its finish handed everything over)
    return finished.snapshot(), load


class _Saved(NamedTuple):
    """Where a fresh index was just saved: its file, content key and rows."""

    path: Path
    key: str
    rows: int


@dataclass
class _Finished:
    """A load made whole, before its snapshot is: its index, or where it was just saved
    (then read back from there, by `snapshot`, and no longer held here)."""

    index: MatchIndex | _Saved
    model: MatchModel
    store: RecordStore
    sources: list[LoadedSource]
    fingerprint: str
    reused: bool

    def snapshot(self) -> Snapshot:
        index = self.index if isinstance(self.index, MatchIndex) else _read_back(self.index)
        return Snapshot(Matcher(index=index, model=self.model, lookup=self.store),
                        self.sources, dt.datetime.now(dt.UTC), self.store, self.fingerprint,
                        self.reused)


def _read_back(saved: _Saved) -> MatchIndex:
    """The index just saved, memory-mapped from its file, read once the load's objects are
    gone: the matching's caches emptied and the freed heap given back, so that it is
    allocated as a start from the file would."""
    caches.clear()
    memory.release_freed()
    mapped = persist.load(saved.path, saved.key, saved.rows)
    if mapped is None:  # saved a moment ago and unreadable now: fail the load, keep the last
        raise IndexReadBackError("the index just saved could not be read back from its file")
    return mapped[0]


class IndexReadBackError(OSError):
    """The index saved by a load could not be read back (a disk fault): the load fails."""


@dataclass
class LoadedLoad:
    """What a read of every source found: each load's counts, the fingerprint, the refusal."""

    sources: list[LoadedSource]
    fingerprint: str
    refusal: Refusal | None = None


def _finish(sources: list[SourceConfig], load: LoadedLoad, built: MatchIndex, sample: _Sample,
            writer: StoreWriter, index_path: Path | None, *,
            target_false_known: float) -> _Finished:
    loads, total = load.sources, writer.count
    key = persist.index_fingerprint(sources, [one.content for one in loads])
    content = store_key(sources, key)
    # The record store's own index and its flush to disk (SQLite, which holds no GIL) are
    # done beside the calibration (Python, one core): on two cores the longer of the two,
    # not their sum. A failure of either fails the load, and leaves no new store behind.
    with ThreadPoolExecutor(1, thread_name_prefix="record-store") as pool:
        storing = pool.submit(writer.finish_or_reuse, path=store_path(index_path, content),
                              key=content)
        try:
            index, model, reused, saved = _calibrated(
                sources, load, built, sample, index_path, key, total,
                target_false_known=target_false_known)
        except BaseException:
            _discard(storing)
            raise
        store, store_reused = storing.result()
    del built
    if not saved:  # (else the caller gives the freed heap back before it reads the file)
        memory.release_freed()
    log.info("record_store_ready", records=len(store), reused=store_reused)
    return _Finished(_Saved(index_path, key, total) if saved and index_path else index, model,
                     store, [one.without_records() for one in loads], load.fingerprint, reused)


def _calibrated(sources: list[SourceConfig], load: LoadedLoad, built: MatchIndex,
                sample: _Sample, index_path: Path | None, key: str, total: int, *,
                target_false_known: float) -> tuple[MatchIndex, MatchModel, bool, bool]:
    """The load's index and model: the saved ones when they are this load's, else `built`
    calibrated on the sample and saved (the caller then serves it from the file, mapped,
    as a restart would). (index, model, reused, saved: a fresh index now in its file)."""
    saved = persist.load(index_path, key, total) if index_path else None
    index, model = saved if saved is not None else (built, None)
    if not still_fits(model, target_false_known):
        model = None  # calibrated for another target, or in another way
    reused = saved is not None
    log.info("index_reused" if reused else "index_fresh", records=total)
    extra = start_facts(sources, load.sources, load.fingerprint)
    # a reused index is saved again when what a start from it needs changed (a file touched,
    # its content the same: the fingerprint and the as-at time are new)
    stale_facts = (saved is not None and index_path is not None
                   and (persist.read_meta(index_path) or {}).get("extra") != extra)
    if model is None:
        started = time.monotonic()
        model = calibrate(index, sample.records, rows=sample.rows,
                          target_false_known=target_false_known)
        log.info("index_calibrated", records=total, sample=len(sample.records),
                 possible=model.thresholds.possible, match=model.thresholds.match,
                 seconds=round(time.monotonic() - started, 3))
    sample.records.clear()
    sample.rows.clear()
    fresh_in_file = False
    if index_path and (saved is None or saved[1] is not model or stale_facts):
        try:
            persist.save(index, index_path, key, model, extra=extra)
        except OSError as exc:  # serve from memory; the next start indexes again
            log.warning("index_not_saved", error=type(exc).__name__)
        else:
            fresh_in_file = not reused
    return index, model, reused, fresh_in_file


def _discard(storing: Future[tuple[RecordStore, bool]]) -> None:
    """The load failed while its store was finished: wait for that, and delete a store it
    wrote (one it found already there is another load's, and stays)."""
    try:
        store, reused = storing.result()
    except BaseException:  # the load's own failure is the one raised
        return
    if not reused:
        store.path.unlink(missing_ok=True)


def start_facts(sources: list[SourceConfig], loaded: list[LoadedSource],
                source_fingerprint: str) -> dict[str, Any]:
    """What a start from the saved index needs beside it (`open_saved`): the sources'
    fingerprint as this load read them and each load's summary (counts, as-at time)."""
    if not source_fingerprint or not all(fast_start_allowed(cfg) for cfg in sources):
        return {}
    return {"sources_fingerprint": source_fingerprint,
            "sources": [one.summary() for one in loaded]}


def fast_start_allowed(cfg: SourceConfig) -> bool:
    """Whether the source's fingerprint (persist.source_digest) says enough to trust the
    saved index without reading it: a file's SHA-256 (CSV, SQLite) does; an SQL database's
    row count does only with the latest as-at value beside it (an edit in place that leaves
    both as they were is then not seen until a refresh of changed content or a rebuild)."""
    return cfg.type != "sql" or bool(cfg.as_at_column)


def open_saved(sources: list[SourceConfig], index_path: Path | None, *,
               target_false_known: float = TARGET_FALSE_KNOWN,
               changed: bool = False) -> Snapshot | None:
    """The snapshot of the saved index and its record store, without reading the sources:
    only when the sources' fingerprint now is the one they had when it was saved, the
    mapping and index formats are the same (the index's content key is recomputed from the
    saved summaries and this configuration), the calibration is for this target, and the
    index and the store are whole and hold the same records. None otherwise (the caller
    reads the sources: a full load, which rebuilds whatever does not fit). ``changed``: the
    sources may have changed since (the caller applies their changes: `apply_changes`)."""
    if index_path is None or not all(fast_start_allowed(cfg) for cfg in sources):
        return None
    meta = persist.read_meta(index_path)
    facts = (meta or {}).get("extra") or {}
    if not facts:
        return None
    try:
        loaded = [LoadedSource.from_summary(doc) for doc in facts["sources"]]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        log.warning("saved_index_not_started_from", reason=f"summary ({type(exc).__name__})")
        return None
    if [one.name for one in loaded] != [cfg.name for cfg in sources]:
        return None
    current = _fingerprint(sources)
    if current is None:
        return None
    if current != facts.get("sources_fingerprint") and not changed:
        log.info("saved_index_not_started_from", reason="the sources changed")
        return None
    started = time.monotonic()
    key = persist.index_fingerprint(sources, [one.content for one in loaded])
    total = sum(one.record_count for one in loaded)
    saved = persist.load(index_path, key, total)
    if saved is None:
        return None
    index, model = saved
    if model is None or not still_fits(model, target_false_known):
        return None
    content = store_key(sources, key)
    store = RecordStore.open(path=store_path(index_path, content), key=content, count=total)
    if store is None:
        return None
    log.info("index_opened_from_saved", records=total,
             seconds=round(time.monotonic() - started, 3))
    try:  # saved as it was built (or as its start facts were last saved: later, not earlier)
        built = dt.datetime.fromtimestamp(index_path.stat().st_mtime, dt.UTC)
    except OSError:
        built = None
    return Snapshot(Matcher(index=index, model=model, lookup=store), loaded,
                    dt.datetime.now(dt.UTC), store, current, True, built_at=built)


class FullLoadNeeded(Exception):
    """The changes cannot be applied to the full load: the message says why (counts, never
    a value)."""


def changes_allowed(sources: list[SourceConfig]) -> bool:
    """Whether a refresh may read only the rows changed since the full load: every source is
    an SQL or SQLite one with an as-at (updated-at) column."""
    return bool(sources) and all(cfg.type != "csv" and bool(cfg.as_at_column)
                                 for cfg in sources)


def same_record(a: PersonRecord, b: PersonRecord) -> bool:
    """The same values (as the record store holds them)."""
    return encode(a) == encode(b)


def apply_changes(sources: list[SourceConfig], current: Snapshot, index_path: Path | None,
                  *, fingerprint: str) -> Snapshot:
    """`current`'s full load with every row changed since it applied, as a new snapshot
    (the full load's index and store untouched): the rows whose as-at value is at or after
    the full load's as-at (less REREAD) are read with one query per source, indexed beside
    the full load's (same calibration) and stored in a record store of their own, and the
    full load's records they replace (the same source and record id) are masked out.
    Raises FullLoadNeeded when that would not tell the truth or not stay small: a source
    holds fewer or more rows than the full load and the changes account for (rows deleted,
    which an as-at column cannot show), a changed row that is no record, a record id held
    twice, more than MAX_CHANGED_SHARE of the records changed, a full load older than
    FULL_LOAD_EVERY; SourceError when a read
    fails. Nothing is published here (see AgentState.apply_changes)."""
    base = current.base
    if [one.name for one in base.sources] != [cfg.name for cfg in sources]:
        raise FullLoadNeeded("the sources are not those of the full load")
    age = dt.datetime.now(dt.UTC) - (base.built_at or base.loaded_at)
    if age > FULL_LOAD_EVERY:
        raise FullLoadNeeded(f"the full load is {age.total_seconds() / 3600:.0f} hours old")
    limit = max(1, int(MAX_CHANGED_SHARE * base.record_count))
    started = time.monotonic()
    writer = StoreWriter(store_dir(index_path))
    keys: list[tuple[str, str]] = []  # of the changed records, in delta row order
    held: dict[tuple[str, str], int] = {}  # the base row each changed record replaces
    replaced: dict[str, Counter[str]] = {}  # what the records replaced had, by source
    fresh: dict[str, Counter[str]] = {}  # what the changed records have, by source
    reads: list[tuple[SourceConfig, LoadedSource, LoadedSource, Any]] = []
    reread = 0  # rows read again exactly as the base holds them (REREAD): no change

    def changed(batch: list[PersonRecord]) -> list[PersonRecord]:
        """The records of `batch` that differ from the base's version (or are new)."""
        nonlocal reread
        found = base.store.rows_of([(r.source, r.record_id) for r in batch])
        if any(len(rows) > 1 for rows in found.values()):
            raise FullLoadNeeded("a changed record's id is held by several records")
        rows = {key: found_rows[0] for key, found_rows in found.items()}
        olds = dict(zip(rows.values(), base.store.fetch(list(rows.values())), strict=True))
        out: list[PersonRecord] = []
        for record in batch:
            key = (record.source, record.record_id)
            row = rows.get(key)
            if row is not None and same_record(olds[row], record):
                reread += 1
                continue
            if row is not None:
                held[key] = row
                count_present(olds[row], replaced.setdefault(record.source, Counter()))
            out.append(record)
        return out

    def records() -> Iterator[PersonRecord]:
        batch: list[PersonRecord] = []
        for cfg, was in zip(sources, base.sources, strict=True):
            one, stream, reading = open_changed(cfg, was.as_at - REREAD)
            reads.append((cfg, was, one, reading))
            try:
                for record in itertools.chain(stream, [None]):
                    if record is not None:
                        batch.append(record)
                        if len(batch) < 1000:
                            continue
                    for kept in changed(batch) if batch else []:
                        if len(keys) >= limit:
                            raise FullLoadNeeded(f"more than {limit} records changed "
                                                 f"({MAX_CHANGED_SHARE:.0%} of the full load)")
                        writer.add(kept)
                        keys.append((kept.source, kept.record_id))
                        count_present(kept, fresh.setdefault(kept.source, Counter()))
                        yield kept
                    batch = []
            finally:
                reading.close()

    try:
        own = build(records())
        if len(set(keys)) != len(keys):
            raise FullLoadNeeded("a record id appears twice among the changed rows")
        masked = np.array(sorted(held.values()), dtype=np.int64)
        delta = on_base(own, base.matcher.index, masked)
        loads: list[LoadedSource] = []
        for cfg, was, one, reading in reads:
            if one.rows_rejected:
                raise FullLoadNeeded(f"{sum(one.rows_rejected.values())} changed row(s) of "
                                     f"{was.name} are not records")
            if one.as_at <= was.as_at - REREAD:  # not even the newest row of the full load
                raise FullLoadNeeded(f"no as-at value of {was.name} was read at or after the "
                                     "full load's (not a time, or rows deleted)")
            unreadable = sum(count for reason, count in one.warnings.items()
                             if reason.split(" ", 1)[0] in plausibility.SEARCH_FIELDS)
            if unreadable * 100 > one.rows_read * cfg.max_rejected_percent:  # as a load
                raise FullLoadNeeded(f"{unreadable} value(s) of {was.name}'s changed rows "
                                     "are unreadable")
            added = sum(1 for key in keys if key[0] == was.name and key not in held)
            expected = was.rows_read + added
            if reading.total != expected:
                raise FullLoadNeeded(f"{was.name} holds {reading.total} rows, the full load "
                                     f"and its changes {expected} (rows deleted?)")
            present = Counter(was.present)
            present.subtract(replaced.get(was.name, Counter()))
            present.update(fresh.get(was.name, Counter()))
            loads.append(dataclasses.replace(  # its warnings: the full load's
                was, as_at=max(was.as_at, one.as_at), rows_read=int(reading.total),
                present=+present, records=[], kept=was.record_count + added))
        content = f"changes-{uuid.uuid4().hex}"
        store = writer.finish(path=store_path(index_path, content), key=content)
    except BaseException:
        writer.abort()
        raise
    added_total = len(keys) - len(masked)
    log.info("changes_read", changed=len(keys), replaced=len(masked), added=added_total,
             unchanged=reread, seconds=round(time.monotonic() - started, 3))
    matcher = LayeredMatcher(base=base.matcher, delta=delta, masked=masked,
                             delta_lookup=store)
    return Snapshot(matcher, loads, dt.datetime.now(dt.UTC), base.store, fingerprint,
                    base.index_reused, Changes(base, store, masked, added_total))


def load_snapshot(sources: list[SourceConfig], index_path: Path | None = None,
                  progress: Callable[[int], None] | None = None, *,
                  target_false_known: float = TARGET_FALSE_KNOWN,
                  workers: int = 0) -> Snapshot:
    """Read, index and calibrate every source (no plausibility checks: see
    AgentState.load); or, when the saved index and store fit the sources unchanged, open
    them without reading the sources (`open_saved`)."""
    opened = open_saved(sources, index_path, target_false_known=target_false_known)
    if opened is not None:
        return opened
    snapshot, _ = stream_snapshot(sources, index_path, progress,
                                  target_false_known=target_false_known, workers=workers)
    assert snapshot is not None  # no check: never refused
    return snapshot


@dataclass(frozen=True)
class LoadStatus:
    """The latest attempt to load the sources: when, and why it was refused (if it was)."""

    at: dt.datetime
    refusal: Refusal | None = None
    fingerprint: str = ""  # the sources as that attempt found them ("" when not known)

    @property
    def retry(self) -> bool:
        """Try again at the next refresh even if the sources look unchanged."""
        return not self.fingerprint or (self.refusal is not None
                                        and self.refusal.problem.transient)


@dataclass
class AgentState:
    snapshot: Snapshot | None = None
    status: LoadStatus | None = None
    # Run on each new snapshot before it is published (the blind token index is built here,
    # so that an agent reports ready only once it can answer every kind of query at speed).
    prepare: Callable[[Snapshot], None] | None = None
    # The operator accepts the next good load whatever its size against the last one
    # (`mash agent serve --accept-shrink`); cleared once a load is accepted.
    accept_shrink: bool = False
    target_false_known: float = TARGET_FALSE_KNOWN  # what the index is calibrated for
    build_workers: int = 0  # processes preparing a large full load (0: one per CPU)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _retired: list[Path] = field(default_factory=list)  # the stores of the one before

    @property
    def ready(self) -> bool:
        return self.snapshot is not None

    @property
    def refusal(self) -> Refusal | None:
        """Why the latest load was refused (None: it was accepted, or none has finished)."""
        status = self.status
        return status.refusal if status is not None else None

    @property
    def stale(self) -> bool:
        """Answering from an older load because the latest was refused."""
        return self.snapshot is not None and self.refusal is not None

    @property
    def error(self) -> str | None:
        refusal = self.refusal
        return refusal.detail if refusal is not None else None

    def unavailable(self, agency_name: str) -> str:
        """The detail of a DATA_UNAVAILABLE answer: why there are no records to search."""
        refusal = self.refusal
        if refusal is None:
            return f"{agency_name}'s records are not loaded yet"
        return (f"{agency_name}'s records are not loaded ({refusal.problem}): {refusal.detail}; "
                "the agency has been alerted through its logs")

    def stale_warning(self, agency_name: str) -> str | None:
        """Said on every answer from an older load: how old, and why."""
        snapshot, refusal = self.snapshot, self.refusal
        if snapshot is None or refusal is None:
            return None
        return (f"{agency_name} answered from its records as at "
                f"{snapshot.as_at:%Y-%m-%d %H:%M} UTC: a newer load was not used "
                f"({refusal.problem})")

    def data_status(self) -> answer_pb2.DataStatus:
        """The status hellos and heartbeats carry to the broker."""
        status = self.status
        out = answer_pb2.DataStatus(stale=self.stale)
        if status is not None and status.refusal is not None:
            out.refused_problem = str(status.refusal.problem)
            out.refused_detail = status.refusal.detail
            out.refused_source = status.refusal.source
            out.refused_at.CopyFrom(timestamp(status.at))
        return out

    def _last_good(self, index_path: Path | None) -> dict[str, Counts]:
        if self.snapshot is not None:
            return self.snapshot.counts()
        if index_path is not None:
            return plausibility.read_baseline(plausibility.baseline_path(index_path))
        return {}

    def load(self, sources: list[SourceConfig], index_path: Path | None = None) -> LoadStatus:
        """Load every source and swap the snapshot in if the load is complete and plausible;
        otherwise keep the old one (if any). Never raises."""
        source_fingerprint = ""
        snapshot: Snapshot | None = None
        try:
            last_good = self._last_good(index_path)

            def check(loaded: list[LoadedSource]) -> Refusal | None:
                return plausibility.check_all(sources, loaded, last_good, self.accept_shrink)

            snapshot = open_saved(sources, index_path,
                                  target_false_known=self.target_false_known)
            if snapshot is not None:  # the saved index fits the sources as they are now
                source_fingerprint = snapshot.fingerprint
                refusal = check(snapshot.sources)
                if refusal is not None:
                    snapshot = None  # (its store stays: it is the saved index's)
            else:
                snapshot = self._saved_with_changes(sources, index_path)
                if snapshot is not None:
                    source_fingerprint = snapshot.fingerprint
                    refusal = check(snapshot.sources)
                    if refusal is not None and snapshot.changes is not None:
                        snapshot.changes.store.path.unlink(missing_ok=True)
                        snapshot = None  # (the saved index's store stays)
                else:
                    snapshot, load = stream_snapshot(
                        sources, index_path, check=check,
                        target_false_known=self.target_false_known,
                        workers=self.build_workers)
                    source_fingerprint, refusal = load.fingerprint, load.refusal
            if snapshot is not None and self.prepare is not None:
                self.prepare(snapshot)
        except Exception as exc:  # never die in the reload loop; never log the message
            refusal = _refusal(exc, "loading its records")
        return self._settle(snapshot, refusal, source_fingerprint, index_path,
                            sources=len(sources))

    def _saved_with_changes(self, sources: list[SourceConfig],
                            index_path: Path | None) -> Snapshot | None:
        """At start, on SQL sources with an as-at column changed since the index was saved:
        the saved index and store with the changes applied (`apply_changes`); None when
        that cannot be (the caller reads the sources in full). A failed read raises."""
        if self.snapshot is not None or index_path is None or not changes_allowed(sources):
            return None
        current = _fingerprint(sources)
        if current is None:
            return None
        base = open_saved(sources, index_path, target_false_known=self.target_false_known,
                          changed=True)
        if base is None:
            return None
        try:
            return apply_changes(sources, base, index_path, fingerprint=current)
        except FullLoadNeeded as exc:
            log.info("changes_not_applied", reason=str(exc), then="a full load")
            return None

    def _settle(self, snapshot: Snapshot | None, refusal: Refusal | None, source_fingerprint: str,
                index_path: Path | None, *, sources: int) -> LoadStatus:
        """Publish `snapshot` whole (one swap under the lock) if it was not refused; else keep
        the one answered from, and say so."""
        if snapshot is None:
            refusal = refusal or Refusal(Problem.LOAD_FAILED, "the load did not complete")
        status = LoadStatus(dt.datetime.now(dt.UTC), refusal, source_fingerprint)
        if refusal is not None or snapshot is None:
            with self._lock:
                self.status = status
            if snapshot is not None:  # indexed, then failed (preparing it): not answered from
                self._discard(snapshot)
            kept = self.snapshot
            # An export caught mid-write is routine (retried at the next refresh) while the
            # agent has records to answer from; anything else needs the agency's attention.
            assert refusal is not None
            routine = kept is not None and refusal.problem == Problem.CHANGED_WHILE_READING
            (log.warning if routine else log.error)(
                "sources_refused", problem=str(refusal.problem), source=refusal.source,
                detail=refusal.detail, serving="last good load" if kept else "nothing",
                serving_as_at=kept.as_at.isoformat() if kept is not None else None)
            return status
        with self._lock:
            replaced, self.snapshot, self.status = self.snapshot, snapshot, status
        self.accept_shrink = False
        # the stores of older loads go; the one just replaced stays for queries still on it
        keep = snapshot.stores + (replaced.stores if replaced else [])
        for path in self._retired:
            if path not in keep:
                path.unlink(missing_ok=True)
        remove_others(index_path, keep)
        self._retired = replaced.stores if replaced else []
        if index_path is not None:
            plausibility.write_baseline(plausibility.baseline_path(index_path),
                                        snapshot.sources, snapshot.loaded_at)
        if snapshot.changes is None:
            log.info("records_indexed", records=snapshot.record_count, sources=sources)
        else:
            log.info("changes_applied", records=snapshot.record_count,
                     changed=len(snapshot.changes.store),
                     replaced=len(snapshot.changes.masked), added=snapshot.changes.added)
        return status

    def _discard(self, snapshot: Snapshot) -> None:
        """Delete the stores of a snapshot never published, unless a published one uses
        them."""
        in_use = set(self._retired) | set(self.snapshot.stores if self.snapshot else [])
        # a snapshot of changes owns their store only (the full load's is its base's)
        own = [snapshot.changes.store.path] if snapshot.changes else [snapshot.store.path]
        for path in own:
            if path not in in_use:
                path.unlink(missing_ok=True)

    def apply_changes(self, sources: list[SourceConfig], index_path: Path | None = None, *,
                      fingerprint: str) -> LoadStatus:
        """Apply the rows changed since the full load answered from (`apply_changes`, the
        module's) and swap the new snapshot in whole if it is plausible; a failed read keeps
        the one answered from (refused, as a load is). When the changes cannot be applied
        (FullLoadNeeded, or no snapshot yet) this is a full `load`. Never raises."""
        current = self.snapshot
        if current is None or not changes_allowed(sources):
            return self.load(sources, index_path)
        snapshot: Snapshot | None = None
        refusal: Refusal | None = None
        try:
            try:
                snapshot = apply_changes(sources, current, index_path, fingerprint=fingerprint)
            except FullLoadNeeded as exc:
                log.info("changes_not_applied", reason=str(exc), then="a full load")
                return self.load(sources, index_path)
            refusal = plausibility.check_all(sources, snapshot.sources,
                                             self._last_good(index_path), self.accept_shrink)
            if refusal is None and self.prepare is not None:
                self.prepare(snapshot)
        except Exception as exc:  # never die in the reload loop; never log the message
            refusal = _refusal(exc, "applying its records' changes")
        return self._settle(snapshot, refusal, fingerprint, index_path, sources=len(sources))

    def refresh(self, sources: list[SourceConfig],
                index_path: Path | None = None) -> LoadStatus | None:
        """Load again when the sources changed since the latest attempt, or when that
        attempt failed in a way worth retrying; None when nothing was attempted."""
        last = self.status
        if last is None:
            return self.load(sources, index_path)
        try:
            current = persist.fingerprint(sources)
        except Exception as exc:  # gone, unreadable or down: the load says which
            log.warning("sources_fingerprint_failed", error=type(exc).__name__)
            return self.load(sources, index_path)
        if not last.retry:
            if current == last.fingerprint:
                return None
            log.info("sources_changed")
        if self.snapshot is not None and changes_allowed(sources):
            return self.apply_changes(sources, index_path, fingerprint=current)
        return self.load(sources, index_path)
