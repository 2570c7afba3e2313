"""Holding an agent's plain queries while a batch of them is out, and sending them together.

An agent answers the queries it is sent as one batch, with one audit transaction (one fsync)
for them all (see mash/agent/batches.py). While a batch is out, the broker holds that agent's
next queries and sends them as one `Queries` message once the batch is answered: one message
instead of many, and the batch grows while the answers are on their way back. A lone lookup
finds nothing out and waits for nobody.

An agent that never answered one query would hold the others back until that one timed out,
so nothing is held more than HOLD_SECONDS after the last batch was sent, nor past half of the
time any held query had left to its own deadline when it arrived (each held query can only
bring the release earlier), and once the last batch sent is settled the held ones go at once,
even while an older query is still out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from mash.batching import batches
from mash.v1 import agent_pb2

HOLD_SECONDS = 1.0


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Where HeldQueries reads the time and sets its timer (a test drives one by hand)."""

    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer: ...


class LoopClock:
    """The running event loop's clock and timers, and the wall clock for deadlines."""

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    def wall(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(delay, callback)


class HeldQueries:
    """One agent's plain queries: sent at once when none is out, otherwise held."""

    def __init__(self, send: Callable[[agent_pb2.ConnectResponse], None], *,
                 clock: Clock | None = None) -> None:
        self._send = send
        self._clock: Clock = clock or LoopClock()
        self._hold_seconds = HOLD_SECONDS
        self.waiting: dict[str, agent_pb2.Query] = {}
        self.latest: set[str] = set()  # the queries of the last send not yet settled
        self._sent_at = 0.0
        self._timer: Timer | None = None
        self.release_at: float | None = None  # when the held ones go (clock.monotonic())

    def add(self, query: agent_pb2.Query) -> None:
        self.waiting[query.query_id] = query
        if not self.latest:
            self._send_waiting()
            return
        due = self._due(query)
        if self.release_at is not None and self.release_at <= due:
            return  # an earlier release is already set
        if self._timer is not None:
            self._timer.cancel()
        self.release_at = due
        self._timer = self._clock.call_later(max(0.0, due - self._clock.monotonic()),
                                             self._send_waiting)

    def _due(self, query: agent_pb2.Query) -> float:
        """The latest moment `query` may be held to: the hold after the last send, or half
        its time left to its own deadline, whichever comes first."""
        now = self._clock.monotonic()
        due = self._sent_at + self._hold_seconds
        if query.HasField("deadline"):
            left = query.deadline.ToNanoseconds() / 1e9 - self._clock.wall()
            due = min(due, now + max(0.0, left) / 2)
        return due

    def settled(self, query_id: str) -> None:
        """The query is answered, or nobody waits for it any more (timed out, cancelled): a
        held query is then never sent, and once the last batch sent is settled the held ones
        go."""
        self.waiting.pop(query_id, None)
        self.latest.discard(query_id)
        if not self.latest and self.waiting:
            self._send_waiting()

    def close(self) -> None:
        self.waiting.clear()
        self._cancel_timer()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.release_at = None

    def _send_waiting(self) -> None:
        self._cancel_timer()
        if not self.waiting:
            return
        queries = list(self.waiting.values())
        self.waiting.clear()
        self._sent_at = self._clock.monotonic()
        self.latest = {query.query_id for query in queries}
        for batch in batches(queries):
            self._send(agent_pb2.ConnectResponse(query=batch[0]) if len(batch) == 1 else
                       agent_pb2.ConnectResponse(queries=agent_pb2.Queries(queries=batch)))
