"""`mash agent serve`: load the records, dial the broker, answer until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import signal

import grpc
from prometheus_client import start_http_server

from mash.agent import memory, metrics
from mash.agent.batches import QueryQueue
from mash.agent.blind import BlindResponder
from mash.agent.config import AgentConfig, hmac_key
from mash.agent.disclosure import AgentPolicy, field_check
from mash.agent.handler import QueryHandler
from mash.agent.links import BrokerLinks
from mash.agent.sources import Problem
from mash.agent.state import AgentState, LoadStatus
from mash.audit import AuditKeys
from mash.blind.config import BlindAgentKeys
from mash.grpc_options import bind
from mash.health import Health
from mash.identity.names import PeerIdentity
from mash.identity.revocation import open_list
from mash.identity.tls import TlsWatch
from mash.logs import get_logger
from mash.policy.store import PolicyStore
from mash.v1 import agent_pb2, answer_pb2

log = get_logger(__name__)
HEALTH_SERVICE = "mash.v1.Agent"
# SERVING while the agent answers from its latest load of its records; NOT_SERVING while it
# has none, or its latest load was refused and it answers from an older one (stale).
DATA_HEALTH_SERVICE = "mash.v1.AgentData"
# While no load has been accepted, try again this often (or every refresh_seconds, if less).
RETRY_SECONDS = 10.0


def build_policy(cfg: AgentConfig) -> AgentPolicy:
    """The agent's policy store; the bundle is loaded by `reload()` (at start, then polled)."""
    key = hmac_key(cfg)
    store = PolicyStore(cfg.policy, validate=field_check(cfg.agency, cfg.field_names, key))
    return AgentPolicy(store, cfg.agency, key)


class Agent:
    """One running agent. `start()` returns once the health port is up; `stop()` ends it."""

    def __init__(self, cfg: AgentConfig, accept_shrink: bool = False) -> None:
        self.cfg = cfg
        self.state = AgentState(accept_shrink=accept_shrink,
                                target_false_known=cfg.target_false_known,
                                build_workers=cfg.index.build_workers)
        self.policy = build_policy(cfg)
        # Opened here, so that an agent that cannot write its audit trail never starts.
        keys = AuditKeys.read(cfg.audit)  # the audit key files, read as the agent starts
        self.audit = keys.open_log()
        # the federation CRL: each broker's certificate is checked against it on every stream
        # (and again on change), and each analyst's certificate proof as it arrives
        revocation = open_list(cfg.revocation, cfg.tls.ca, str(cfg.path))
        self.handler = QueryHandler(cfg, self.state, self.policy, self.audit,
                                    hasher=keys.hasher, revocation=revocation)
        self.blind = (BlindResponder(self.handler, BlindAgentKeys.read(cfg.blind,
                                                                       agency=cfg.agency))
                      if cfg.blind else None)
        if self.blind is not None:
            self.state.prepare = self.blind.prepare
        self.health = Health()
        self.link = BrokerLinks(cfg, self.state, self.handler,
                                on_connected=self._connected_changed, receive=self.receive,
                                exchange=keys.exchange(self.audit))
        self.link.revocation = revocation
        self._stop = asyncio.Event()
        self._server: grpc.aio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.health_port: int | None = None

    async def receive(self, query: agent_pb2.Query,
                      queries: QueryQueue) -> agent_pb2.QueryAnswer:
        """A query from a broker, answered on the query threads: a plain one through the
        query queue, a blind round through the blind responder."""
        if not query.HasField("blind"):
            return agent_pb2.QueryAnswer(query_id=query.query_id,
                                         answer=await self.handler.answer_queued(query, queries))
        return await asyncio.get_running_loop().run_in_executor(
            queries.workers, contextvars.copy_context().run, self._receive_blind, query)

    def _receive_blind(self, query: agent_pb2.Query) -> agent_pb2.QueryAnswer:
        if self.blind is None:
            return agent_pb2.QueryAnswer(query_id=query.query_id, answer=self.handler.answer(
                query, lambda q, t: self.handler.not_checked(
                    answer_pb2.NOT_CHECKED_REASON_AGENT_ERROR,
                    f"{self.cfg.name}'s agent is not set up for blind lookups (no blind: "
                    "section in its configuration)")))
        return self.blind.receive(query)

    def _ours(self, identity: PeerIdentity | None) -> str | None:
        """A replaced certificate must still be this agency's agent's."""
        if identity != PeerIdentity("agent", self.cfg.agency):
            return (f"the certificate does not identify the agent of {self.cfg.agency!r}; "
                    f"issue one with `mash certs issue --agency {self.cfg.agency}`")
        return None

    def _connected_changed(self, connected: bool) -> None:
        asyncio.get_running_loop().create_task(self._refresh_health())

    async def _refresh_health(self) -> None:
        await self.health.set(HEALTH_SERVICE, self.state.ready and self.link.connected)
        await self.health.set(DATA_HEALTH_SERVICE, self.state.ready and not self.state.stale)
        await self.health.set("", self.state.ready)
        for service, up in self.link.health().items():
            await self.health.set(service, up)

    async def start(self) -> None:
        await asyncio.to_thread(self.policy.store.reload)
        self._tasks.append(asyncio.create_task(
            self.policy.store.watch(self._stop, self.link.notify_status)))
        await self._refresh_health()
        if self.cfg.health_listen:
            self._server = grpc.aio.server()
            self.health.add_to(self._server)
            self.health_port = bind(self._server, self.cfg.health_listen)
            await self._server.start()
        if self.cfg.metrics_port:
            start_http_server(self.cfg.metrics_port, addr="127.0.0.1")
        if self.link.revocation is not None:
            self._tasks.append(asyncio.create_task(
                self.link.revocation.watch(self._stop, self.link.recheck)))
        self._tasks.append(asyncio.create_task(
            TlsWatch(self.cfg.tls, self._ours).watch(self._stop, self.link.renew)))
        self._tasks.append(asyncio.create_task(self.link.run(self._stop)))
        self._tasks.append(asyncio.create_task(self._load()))

    def _interval(self) -> float | None:
        """Seconds to the next look at the sources; None: never again."""
        refresh = self.cfg.refresh_seconds
        if self.state.ready:
            return refresh or None
        return min(refresh, RETRY_SECONDS) if refresh else RETRY_SECONDS

    async def _load(self) -> None:
        status = await asyncio.to_thread(self.state.load, self.cfg.sources, self.cfg.index_path)
        await self._attempted(status)
        while not self._stop.is_set() and (interval := self._interval()) is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval)
            if self._stop.is_set():
                break
            attempt = await asyncio.to_thread(self.state.refresh, self.cfg.sources,
                                              self.cfg.index_path)
            if attempt is not None:
                await self._attempted(attempt)

    async def _attempted(self, status: LoadStatus) -> None:
        """After each load of the sources, accepted or refused: metrics, status, health."""
        agency = self.cfg.agency
        refusal = status.refusal
        if refusal is None:
            # Hundreds of thousands of loaded records are long-lived: move them out of the
            # collector's sight, or every full collection walks them all and stalls a query.
            # (Unfreeze first, so that what a reload replaced can be collected.)
            gc.unfreeze()
            memory.release_freed()  # the load's records are dropped: give their heap back
            gc.freeze()
        else:
            metrics.LOADS_REFUSED.labels(agency, refusal.source, str(refusal.problem)).inc()
        for problem in Problem:
            metrics.LAST_LOAD_REFUSED.labels(agency, str(problem)).set(
                1 if refusal is not None and refusal.problem == problem else 0)
        snapshot = self.state.snapshot
        metrics.READY.labels(agency).set(1 if snapshot is not None else 0)
        metrics.SNAPSHOT_STALE.labels(agency).set(1 if self.state.stale else 0)
        if snapshot is not None:
            metrics.RECORDS.labels(agency).set(snapshot.record_count)
            metrics.DATA_AS_AT.labels(agency).set(snapshot.as_at.timestamp())
        self.link.notify_status()
        await self._refresh_health()

    async def wait_ready(self, timeout: float = 30, every_broker: bool = True) -> None:
        """Until the records are loaded and the streams up (to every broker, or to one)."""
        async def ready() -> None:
            while not (self.state.ready and (self.link.all_connected if every_broker
                                             else self.link.connected)):
                await asyncio.sleep(0.05)
        await asyncio.wait_for(ready(), timeout)

    async def stop(self) -> None:
        self._stop.set()
        await self.health.shutdown()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, timeout=5)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        if self._server is not None:
            await self._server.stop(grace=1)
        self.link.close()
        self.audit.close()

    async def wait_stopped(self) -> None:
        await self._stop.wait()


async def serve(cfg: AgentConfig, accept_shrink: bool = False) -> None:
    agent = Agent(cfg, accept_shrink)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent._stop.set)
    log.info("agent_starting", agency=cfg.agency, brokers=len(cfg.brokers),
             sources=len(cfg.sources))
    await agent.start()
    await agent.wait_stopped()
    log.info("agent_stopping", agency=cfg.agency)
    await agent.stop()
