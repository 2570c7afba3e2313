"""Holding an agent's plain queries while a batch of them is out, and sending them together.

An agent answers the queries it is sent as one batch, with one audit transaction (one fsync)
for them all (see mash/agent/batches.py). While a batch is out, the broker holds that agent's
next queries and sends them as one `Queries` message once the batch is answered: one message
instead of many, and the batch grows while the answers are on their way back. A lone lookup
finds nothing out and waits for nobody.

An agent that never answered one query would hold the others back until that one timed out,
so nothing is held more than HOLD_SECONDS after the batch out was sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from mash.batching import batches
from mash.v1 import agent_pb2

HOLD_SECONDS = 1.0


class HeldQueries:
    """One agent's plain queries: sent at once when none is out, otherwise held."""

    def __init__(self, send: Callable[[agent_pb2.ConnectResponse], None]) -> None:
        self._send = send
        self._hold_seconds = HOLD_SECONDS
        self.waiting: dict[str, agent_pb2.Query] = {}
        self.in_flight: set[str] = set()
        self._sent_at = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def add(self, query: agent_pb2.Query) -> None:
        self.waiting[query.query_id] = query
        if not self.in_flight:
            self._send_waiting()
        elif self._timer is None:
            delay = max(0.0, self._sent_at + self._hold_seconds - time.monotonic())
            self._timer = asyncio.get_running_loop().call_later(delay, self._send_waiting)

    def settled(self, query_id: str) -> None:
        """The query is answered, or nobody waits for it any more (timed out, cancelled): a
        held query is then never sent, and once the batch out is settled the next one goes."""
        self.waiting.pop(query_id, None)
        self.in_flight.discard(query_id)
        if not self.in_flight and self.waiting:
            self._send_waiting()

    def close(self) -> None:
        self.waiting.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _send_waiting(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.waiting:
            return
        queries = list(self.waiting.values())
        self.waiting.clear()
        self._sent_at = time.monotonic()
        for batch in batches(queries):
            self.in_flight.update(query.query_id for query in batch)
            self._send(agent_pb2.ConnectResponse(query=batch[0]) if len(batch) == 1 else
                       agent_pb2.ConnectResponse(queries=agent_pb2.Queries(queries=batch)))
