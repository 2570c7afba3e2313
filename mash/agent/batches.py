"""Plain queries waiting for a query thread, answered in batches.

Under load an agent is asked faster than it answers, and every query answered on its own
pays for a hand-off to a query thread, an audit transaction with its fsync, and a wake-up of
the event loop. So a query thread that comes free takes every query waiting at that moment
(up to MAX_BATCH) and answers them together: one hand-off, one transaction and one wake-up
for the lot. A query that finds a thread free goes to it at once: a lone lookup waits for
nobody, and batches grow only as the queue does.

Each batch is one job on the query threads' executor, so a blind query submitted meanwhile
takes its turn between batches rather than waiting for the queue to empty.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future

from mash.agent import metrics
from mash.batching import MAX_BATCH
from mash.futures import settle_from_thread
from mash.v1 import agent_pb2, answer_pb2

AnswerBatch = Callable[[list[agent_pb2.Query]], list[answer_pb2.AgencyAnswer]]
Waiter = asyncio.Future[answer_pb2.AgencyAnswer]
Waiting = tuple[agent_pb2.Query, Waiter]


class Stopped(Exception):
    """The query was never answered: the query threads shut down first, or failed."""


class QueryQueue:
    """`await queue.answer(query)`: the answer once `answer_batch` has given it (with
    `answer_batch` run on `workers`, by at most `threads` jobs at a time)."""

    def __init__(self, answer_batch: AnswerBatch, workers: Executor, threads: int,
                 agency: str = "", max_batch: int = MAX_BATCH) -> None:
        self.workers = workers
        self._answer_batch = answer_batch
        self._threads = threads
        self._max_batch = max_batch
        self._batch_sizes = metrics.batch_queries(agency)
        self._lock = threading.Lock()
        self._waiting: list[Waiting] = []
        self._jobs = 0  # batches submitted and not yet finished

    async def answer(self, query: agent_pb2.Query) -> answer_pb2.AgencyAnswer:
        """The query's answer; raises Stopped if the query threads shut down first."""
        future: Waiter = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiting.append((query, future))
            start = self._jobs < self._threads
            if start:
                self._jobs += 1
        if start:
            self._submit()
        return await future

    def _submit(self) -> None:
        """Start a batch job (the caller has counted it in `_jobs`)."""
        try:
            job = self.workers.submit(contextvars.copy_context().run, self._run_batch)
        except RuntimeError:  # the executor has shut down
            self._job_lost()
            return
        job.add_done_callback(self._check_ran)

    def _run_batch(self) -> None:
        """On a query thread: answer what is waiting, then start the next batch if more has
        queued meanwhile (as a new job, behind anything else submitted in between)."""
        with self._lock:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
        # a query whose waiter has gone (its stream closed) is not searched
        batch = [(query, future) for query, future in batch if not future.cancelled()]
        try:
            if batch:
                self._batch_sizes.observe(len(batch))
                answers = self._answer_batch([query for query, _ in batch])
                settle_from_thread([(future, answer) for (_, future), answer in zip(
                    batch, answers, strict=True)])
        except BaseException:  # answer_batch never raises: belt and braces
            settle_from_thread([(future, Stopped("failed while searching")) for _, future in batch])
            raise
        finally:
            with self._lock:
                more = bool(self._waiting)
                if not more:
                    self._jobs -= 1
            if more:
                self._submit()

    def _check_ran(self, job: Future[None]) -> None:
        if job.cancelled():  # the executor shut down with the job still queued
            self._job_lost()

    def _job_lost(self) -> None:
        """A batch job will never run: when no other job is left to take the waiting queries,
        tell their waiters, rather than leaving them waiting for ever."""
        with self._lock:
            self._jobs -= 1
            waiting: list[Waiting] = []
            if self._jobs == 0:
                waiting, self._waiting = self._waiting, []
        stopped = Stopped("stopped before it searched")
        settle_from_thread([(future, stopped) for _, future in waiting])
