"""The agent's streams to every broker: one `BrokerLink` each, one query queue for all.

Each link reconnects with its own backoff, so a broker that is down (or restarting) delays
no other; the agent serves while any link is up, and its health says which are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from mash.addresses import expand
from mash.agent import metrics
from mash.agent.batches import QueryQueue
from mash.agent.config import AgentConfig
from mash.agent.handler import QueryHandler
from mash.agent.link import BrokerLink, Receive
from mash.agent.state import AgentState
from mash.audit.exchange import HeadExchange
from mash.identity.revocation import RevocationList

# Queries are searched on a pool of their own, so that loading or refreshing records (which
# can take minutes) never holds up a query. One of its threads at a time answers the plain
# queries waiting, in batches (see batches.py): searching is mostly Python, which runs one
# thread at a time anyway, and one thread's batches grow while it commits, where two threads
# would split them (bench.paired, against answering each query on its own: batches on two
# threads cost 0.96 of its CPU a lookup, on one 0.89). The second
# thread keeps a blind query (a token round, say) from waiting behind a batch.
QUERY_THREADS = 2
BATCH_THREADS = 1
# Health service names: one per broker link, SERVING while its stream is up.
LINK_HEALTH_PREFIX = "mash.v1.AgentLink/"


class BrokerLinks:
    """Every broker link of one agent, sharing its query threads."""

    def __init__(self, cfg: AgentConfig, state: AgentState, handler: QueryHandler, *,
                 on_connected: Callable[[bool], None] | None = None,
                 receive: Receive | None = None, exchange: HeadExchange | None = None) -> None:
        self.cfg = cfg
        self._on_connected = on_connected
        self._workers = ThreadPoolExecutor(QUERY_THREADS, thread_name_prefix="mash-query")
        self.queries = QueryQueue(handler.answer_batch, self._workers, BATCH_THREADS,
                                  cfg.agency)
        self.links = [
            BrokerLink(cfg, address, state, handler, self.queries,
                       on_connected=self._changed, receive=receive, exchange=exchange)
            for address in expand(cfg.brokers, cfg.broker_server_name)]

    def _changed(self, _connected: bool) -> None:
        metrics.CONNECTED.labels(self.cfg.agency).set(sum(link.connected for link in self.links))
        if self._on_connected:
            self._on_connected(self.connected)

    @property
    def connected(self) -> bool:
        """True while at least one broker's stream is up."""
        return any(link.connected for link in self.links)

    @property
    def all_connected(self) -> bool:
        return all(link.connected for link in self.links)

    def health(self) -> dict[str, bool]:
        """Each link's health service name and whether its stream is up."""
        return {LINK_HEALTH_PREFIX + link.address.target: link.connected
                for link in self.links}

    @property
    def revocation(self) -> RevocationList | None:
        """The federation CA's CRL every broker's certificate is checked against (or None)."""
        return self.links[0].revocation if self.links else None

    @revocation.setter
    def revocation(self, value: RevocationList | None) -> None:
        for link in self.links:
            link.revocation = value

    def recheck(self) -> None:
        """The revocation list changed: end every stream whose broker no longer passes it."""
        for link in self.links:
            link.recheck()

    def renew(self) -> None:
        """The TLS files were replaced: every stream reconnects with them."""
        for link in self.links:
            link.renew()

    def notify_status(self) -> None:
        for link in self.links:
            link.notify_status()

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(link.run(stop) for link in self.links))

    def close(self) -> None:
        """Release the query threads (queries still running finish on their own)."""
        self._workers.shutdown(wait=False, cancel_futures=True)
