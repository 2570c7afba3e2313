"""Assembling and running the broker's gRPC server."""

from __future__ import annotations

import asyncio
import signal
import time

import grpc
from prometheus_client import start_http_server

from mash import reflection
from mash.audit import AuditKeys, AuditLog
from mash.broker.agents import AgentService
from mash.broker.config import BrokerConfig
from mash.broker.lookup import FederationService, LookupService
from mash.broker.registry import Registry
from mash.broker.routing import build_routing
from mash.errors import ConfigError
from mash.grpc_options import bind, server_options
from mash.health import Health
from mash.identity.names import PeerIdentity
from mash.identity.revocation import open_list
from mash.identity.tls import ReloadingServerCredentials
from mash.logs import get_logger
from mash.rpc import register
from mash.v1 import agent_pb2, lookup_pb2

log = get_logger(__name__)
AGENT_SERVICE = agent_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name
# The analysts' services; the agents' is SERVING from the start, for them to connect.
SERVICE_NAMES = (
    lookup_pb2.DESCRIPTOR.services_by_name["LookupService"].full_name,
    lookup_pb2.DESCRIPTOR.services_by_name["FederationService"].full_name,
)


def _a_broker(identity: PeerIdentity | None) -> str | None:
    if identity is None or identity.kind != "broker":
        return "the certificate does not identify a broker: issue one with `mash certs broker`"
    return None


class Broker:
    """A running broker. `start()` binds and returns the port; `stop()` drains and closes."""

    def __init__(self, cfg: BrokerConfig) -> None:
        self.cfg = cfg
        self.routing = build_routing(cfg)
        self.registry = Registry(self.routing.registered)
        self.health = Health()
        self.server: grpc.aio.Server | None = None
        self.port: int | None = None
        self.audit: AuditLog | None = None
        self._ready: asyncio.Task[None] | None = None
        self.lookups: LookupService | None = None

    async def start(self) -> int:
        # certificates, key and CA bundle are read again after they change (rotation);
        # they and the revocation list are checked before the bundle, so that a broker
        # which cannot start says only why
        self.tls = ReloadingServerCredentials(self.cfg.tls, _a_broker)
        credentials = self.tls.credentials()
        self.registry.revocation = await asyncio.to_thread(
            open_list, self.cfg.revocation, self.cfg.tls.ca, str(self.cfg.path))
        await asyncio.to_thread(self.routing.store.reload)
        if not self.routing.registered():
            raise ConfigError(
                f"{self.cfg.path}: no agency is registered: name them under `agents:` in "
                "policies/federation.yaml and sign the bundle, or under `agencies:` here")
        # the audit key files, read as the broker starts (the config names them)
        keys = await asyncio.to_thread(AuditKeys.read, self.cfg.audit)
        self.audit = await asyncio.to_thread(keys.open_log)
        if self.cfg.metrics_port:
            start_http_server(self.cfg.metrics_port, addr="127.0.0.1")
        self._stop_watch = asyncio.Event()
        self._watch = asyncio.create_task(self.routing.store.watch(
            self._stop_watch, self._policy_changed))
        self._watches: list[asyncio.Task[None]] = []
        if self.registry.revocation is not None:
            self._watches.append(asyncio.create_task(self.registry.revocation.watch(
                self._stop_watch, self.registry.close_revoked)))
        server = grpc.aio.server(options=server_options())
        services = lookup_pb2.DESCRIPTOR.services_by_name
        self.lookups = LookupService(self.cfg, self.registry, self.routing, self.audit,
                                     hasher=keys.hasher)
        register(server, self.lookups, services["LookupService"])
        register(server, FederationService(self.cfg, self.registry, self.lookups.verifier),
                 services["FederationService"])
        register(server, AgentService(self.cfg, self.registry,
                                      keys.exchange(self.audit)),
                 agent_pb2.DESCRIPTOR.services_by_name["AgentService"])
        self.health.add_to(server)
        reflection.enable(server, (*SERVICE_NAMES, AGENT_SERVICE, "grpc.health.v1.Health"))
        port = bind(server, self.cfg.listen, credentials)
        await server.start()
        await self.health.set("", True)
        await self.health.set(AGENT_SERVICE, True)
        self.server, self.port = server, port
        if self.cfg.wait_for_agents_seconds:
            self._ready = asyncio.create_task(self._serve_lookups())
        else:
            await self._serve_lookups()
        log.info("broker_listening", port=port, broker_id=self.cfg.broker_id,
                 agencies=len(self.routing.registered()), registered_by=self.routing.source,
                 routing=self.routing.revision)
        return port

    def _policy_changed(self) -> None:
        log.info("agencies_registered", source=self.routing.source,
                 agencies=len(self.routing.registered()))
        self.registry.close_unregistered()

    async def _serve_lookups(self) -> None:
        """Lookups SERVING once every agent is connected, or wait_for_agents_seconds passed:
        a broker that has just started would otherwise answer NOT_CHECKED (agent offline)
        for agents still reconnecting, while another broker has them all."""
        deadline = time.monotonic() + self.cfg.wait_for_agents_seconds
        while (time.monotonic() < deadline
               and self.registry.online < len(self.routing.registered())):
            await asyncio.sleep(0.05)
        for name in SERVICE_NAMES:
            await self.health.set(name, True)
        log.info("broker_serving_lookups", agents_online=self.registry.online,
                 agencies=len(self.routing.registered()))

    async def stop(self, grace: float = 2.0) -> None:
        if self._ready is not None:
            self._ready.cancel()
        self._stop_watch.set()
        await self._watch
        for task in self._watches:
            await task
        await self.health.shutdown()
        # the broker's last head, for every connected agent to hold
        await asyncio.gather(*(s.witnessing.final(timeout=1.0)
                               for s in self.registry.sessions() if s.witnessing is not None))
        self.registry.close_all()
        if self.server is not None:
            await self.server.stop(grace)
        if self.audit is not None:
            self.audit.close()
        if self.lookups is not None and self.lookups.shared is not None:
            self.lookups.shared.close()
        log.info("broker_stopped", broker_id=self.cfg.broker_id)


async def serve(cfg: BrokerConfig) -> None:
    broker = Broker(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await broker.start()
    await stop.wait()
    await broker.stop()
