"""Source rows made ready for the index and the record store, in worker processes for a
large load.

A full load reads each source in batches of raw rows (`RowBatches`); each batch is
`prepare`d: mapped to records, encoded for the record store, indexed as a `Shard`, and the
records the calibration sample may keep picked out. The work is the same in this process
or another, so a small load (the first PARALLEL_FROM rows of any load) is prepared here,
and the rest of a large one by ``workers`` processes (one per CPU by default), a few
batches in flight each, their results taken back strictly in order. Nothing but counts
is logged from a worker.

The workers are started by a fork server (a fresh interpreter, then forked), never forked
from the agent itself: the agent has threads (gRPC, the reload loop) whose locks a fork
would copy held. As with any such pool, each worker imports the program's main module
(`mash`, a bench, pytest: all guard their entry point with ``if __name__ == "__main__"``).
Workers that cannot start or that die (BrokenProcessPool) are not a failed load: the
batches they held, and the rest, are prepared in this process, with a warning. An error
inside `prepare` itself fails the load, as it would here.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from mash.agent.record_store import encode
from mash.agent.sources import MappedRows, map_rows
from mash.agent.sources.mapping import ColumnMapping
from mash.logs import get_logger
from mash.matching.index import Shard, shard
from mash.records import PersonRecord

log = get_logger(__name__)
PARALLEL_FROM = 100_000  # rows of a load prepared here before the workers start
IN_FLIGHT = 3  # batches queued per worker


@dataclass
class Job:
    """A batch of one source's raw rows, and where it stands in the load."""

    mapping: ColumnMapping
    source: str
    first_number: int  # the row number of the batch's first row in its source
    rows: list[dict[str, Any]]
    position: int  # rows read before this batch, over every source of the load
    stride: int  # the calibration sample's stride when the batch was sent


@dataclass
class Prepared:
    """A batch ready to be added: its mapping's counts (the records themselves stay in the
    worker), the records encoded for the store, their index shard, and the sample's
    candidates as (offset among the batch's records, position in the load, record)."""

    mapped: MappedRows
    stored: list[tuple[str, str, str]]
    shard: Shard
    sample: list[tuple[int, int, PersonRecord]]


def prepare(job: Job) -> Prepared:
    """Map, encode and index one batch (pure: it runs in a worker for a large load)."""
    mapped = map_rows(job.rows, job.mapping, job.source, job.first_number)
    records = mapped.records
    sample = [(i, job.position + offset, record)
              for i, (offset, record) in enumerate(zip(mapped.offsets, records, strict=True))
              if (job.position + offset) % job.stride == 0]
    prepared = Prepared(mapped, [(encode(r), r.source, r.record_id) for r in records],
                        shard(records), sample)
    mapped.records = []  # counted (by their offsets), not sent back
    return prepared


def default_workers() -> int:
    """One worker per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class Preparer:
    """Batches prepared in order: here until PARALLEL_FROM rows (or with one worker), then
    by a pool of worker processes. Use as a context manager (the pool is stopped on exit,
    a failure included)."""

    def __init__(self, workers: int = 0, parallel_from: int | None = None) -> None:
        self.workers = workers or default_workers()
        self.parallel_from = PARALLEL_FROM if parallel_from is None else parallel_from
        self._pool: ProcessPoolExecutor | None = None
        self._broken = False
        self._pending: deque[tuple[Job, Future[Prepared]]] = deque()

    def __enter__(self) -> Preparer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    @property
    def parallel(self) -> bool:
        return self._pool is not None

    def submit(self, job: Job) -> Iterator[Prepared]:
        """Send a batch; yields the batches (this one or earlier ones) that are ready."""
        if (self._pool is None and not self._broken and self.workers > 1
                and job.position >= self.parallel_from):
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("forkserver"))
            log.info("index_workers_started", workers=self.workers, after_rows=job.position)
        if self._pool is not None:
            try:
                self._pending.append((job, self._pool.submit(prepare, job)))
            except BrokenProcessPool:
                self._pending.append((job, _failed()))
        else:
            self._pending.append((job, _done(prepare(job))))
        while len(self._pending) > IN_FLIGHT * self.workers * self.parallel:
            yield self._next()

    def drain(self) -> Iterator[Prepared]:
        """Every batch still in flight, in order."""
        while self._pending:
            yield self._next()

    def _next(self) -> Prepared:
        job, future = self._pending.popleft()
        try:
            return future.result()
        except (BrokenProcessPool, CancelledError):  # (cancelled: by the stop below)
            if not self._broken:
                log.warning("index_workers_failed", then="the rest prepared by the agent")
                self._broken = True
                self._stop()
            return prepare(job)


def _done(prepared: Prepared) -> Future[Prepared]:
    future: Future[Prepared] = Future()
    future.set_result(prepared)
    return future


def _failed() -> Future[Prepared]:
    future: Future[Prepared] = Future()
    future.set_exception(BrokenProcessPool("the index workers stopped"))
    return future
