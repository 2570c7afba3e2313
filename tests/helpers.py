"""Real federations for tests: a CA, a broker and agents on loopback with mTLS.

In-process variants run the broker and agents on the test's event loop (fast, and the
test can reach inside); subprocess variants run `python -m mash ... serve` as real
processes so that tests can kill, stop and restart them.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from mash.agent import config as agent_config
from mash.agent.service import Agent
from mash.broker import config as broker_config
from mash.broker.server import Broker
from mash.client import parse_date, split_name
from mash.context import URGENCY_ENUMS
from mash.demo import data, federation
from mash.grpc_options import channel_options
from mash.identity.tls import TlsFiles
from mash.matching import calibration
from mash.matching.model import MatchModel
from mash.v1 import lookup_pb2, lookup_pb2_grpc, subject_pb2

AGENCIES = ["police", "health", "csc", "education", "probation", "housing", "asc", "ambulance"]

# A directory the xdist workers of one test run share (set by conftest), or None
SHARED_CALIBRATIONS: Path | None = None
READY_SECONDS = 90  # an agent's first load calibrates its index: slow on a loaded machine


@contextmanager
def calibrations_shared(root: Path | None) -> Iterator[None]:
    """While in-process federations run: a model that another worker of this test run has
    already calibrated from the same index and arguments is read from ``root``, not made
    again. Calibration is deterministic for those inputs (``calibration.calibrate``), so no
    answer changes, only the time a federation takes to start; the matching tests, which
    do not start federations, calibrate for real every time. Without ``root`` (no xdist)
    each process calibrates for itself, as the agent's own memo does."""
    if root is None:
        yield
        return
    real = calibration._calibrate

    def shared(index: Any, records: Any, **kw: Any) -> MatchModel:
        key = hashlib.blake2b(repr(sorted(kw.items())).encode()
                              + calibration.content_digest(index), digest_size=16)
        path = root / f"{key.hexdigest()}.json"
        with suppress(FileNotFoundError):
            return MatchModel.from_json(path.read_text())
        model = real(index, records, **kw)
        part = path.with_name(f"{path.name}.{os.getpid()}.part")
        part.write_text(model.to_json())
        os.replace(part, path)  # whole or absent for a reader in another worker
        return model

    calibration._calibrate = shared  # type: ignore[assignment]
    try:
        yield
    finally:
        calibration._calibrate = real  # type: ignore[assignment]


def build_federation(root: Path, agencies: list[str] | None = None, background: int = 300,
                     **kw: Any) -> federation.Federation:
    files = data.write_all(root / "data", background=background)
    return federation.build(root, agencies or AGENCIES, files, **kw)


def lookup_request(name: str | None = "Leah Thompson", dob: str | None = "2014-05-17",
                   postcodes: tuple[str, ...] = ("LS9 8AB",), purpose: str = "child_safeguarding",
                   stage: str = "research", case: str = "MASH-TEST-1",
                   reason: str = "Test lookup for an integration test",
                   urgency: str = "amber", **subject_fields: Any) -> lookup_pb2.LookupRequest:
    subject = subject_pb2.Subject(**subject_fields)
    if name:
        subject.name.CopyFrom(split_name(name))
    if dob:
        subject.date_of_birth.CopyFrom(parse_date(dob))
    for postcode in postcodes:
        subject.addresses.add(postcode=postcode)
    return lookup_pb2.LookupRequest(
        subject=subject,
        context=subject_pb2.RequestContext(
            purpose=purpose, stage=stage, case_reference=case, justification=reason,
            urgency=URGENCY_ENUMS[urgency]))


def client_tls(fed: federation.Federation, stem: str = "mash-client") -> TlsFiles:
    c = fed.certs
    return TlsFiles(ca=c / "ca.pem", cert=c / f"{stem}.pem", key=c / f"{stem}.key")


@dataclass
class AsyncAnalyst:
    """An analyst's aio client: a TLS identity plus a token."""

    channel: grpc.aio.Channel
    token: str | None

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),) if self.token is not None else ()

    async def lookup(self, request: lookup_pb2.LookupRequest,
                     timeout: float = 10) -> lookup_pb2.LookupResponse:
        stub = lookup_pb2_grpc.LookupServiceStub(self.channel)
        return await stub.Lookup(request, timeout=timeout, metadata=self.metadata)

    async def agents(self) -> lookup_pb2.ListAgentsResponse:
        stub = lookup_pb2_grpc.FederationServiceStub(self.channel)
        return await stub.ListAgents(lookup_pb2.ListAgentsRequest(), timeout=5,
                                     metadata=self.metadata)


def analyst_channel(fed: federation.Federation, tls: TlsFiles | None = None,
                    port: int | None = None) -> grpc.aio.Channel:
    tls = tls or client_tls(fed)
    return grpc.aio.secure_channel(f"127.0.0.1:{port or fed.broker_port}",
                                   tls.channel_credentials(), options=channel_options("localhost"))


@dataclass
class Running:
    """An in-process federation."""

    fed: federation.Federation
    broker: Broker | None = None
    agents: dict[str, Agent] = field(default_factory=dict)
    more_brokers: dict[int, Broker] = field(default_factory=dict)  # n >= 2: fed.broker_configs

    @classmethod
    @asynccontextmanager
    async def up(cls, fed: federation.Federation,
                 agencies: list[str] | tuple[str, ...]) -> AsyncIterator[Running]:
        """The broker and these agencies' agents running (each agent ready) until the block
        ends, then everything stopped, whatever the block raised."""
        run = cls(fed)
        with calibrations_shared(SHARED_CALIBRATIONS):
            try:
                await run.start_broker()
                for agency in agencies:
                    await run.start_agent(agency)
                yield run
            finally:
                await run.stop()

    async def start_broker(self, n: int = 1) -> Broker:
        """Start the n-th broker (from 1) of a federation built with brokers >= n."""
        config = self.fed.broker_config if n == 1 else self.fed.broker_configs[n - 1]
        broker = Broker(broker_config.load(config))
        await broker.start()
        if n == 1:
            self.broker = broker
        else:
            self.more_brokers[n] = broker
        return broker

    async def stop_broker(self, n: int) -> None:
        broker = self.broker if n == 1 else self.more_brokers.pop(n, None)
        if n == 1:
            self.broker = None
        if broker is not None:
            await broker.stop(grace=0.5)

    async def start_agent(self, agency: str, wait: bool = True) -> Agent:
        agent = Agent(agent_config.load(self.fed.agent_configs[agency]))
        await agent.start()
        self.agents[agency] = agent
        if wait:
            await agent.wait_ready(timeout=READY_SECONDS)
        return agent

    async def stop_agent(self, agency: str) -> None:
        await self.agents.pop(agency).stop()

    async def stop(self) -> None:
        for agency in list(self.agents):
            await self.stop_agent(agency)
        for n in list(self.more_brokers):
            await self.stop_broker(n)
        if self.broker is not None:
            await self.broker.stop(grace=0.5)
            self.broker = None

    def analyst(self, token: str | None = "default", tls: TlsFiles | None = None,
                broker: int = 1) -> AsyncAnalyst:
        """An analyst talking to the `broker`-th broker (from 1)."""
        if token == "default":
            token = self.fed.token()
        port = self.fed.broker_ports[broker - 1] if self.fed.broker_ports else None
        return AsyncAnalyst(analyst_channel(self.fed, tls, port), token)


async def wait_until(predicate: Any, timeout: float = 15, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError("condition not met in time")


# --- real processes -----------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signal(self, sig: int) -> None:
        os.kill(self.popen.pid, sig)

    def stop(self, timeout: float = 10) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


def spawn(fed: federation.Federation, role: str, agency: str | None = None,
          tag: str = "", broker: int = 1) -> Proc:
    """`python -m mash <role> serve`: the `broker`-th broker (from 1), or an agency's agent."""
    if role == "broker":
        config = fed.broker_configs[broker - 1] if fed.broker_configs else fed.broker_config
        name = "broker" if broker == 1 else f"broker-{broker}"
    else:
        assert agency is not None
        config, name = fed.agent_configs[agency], agency
    log = fed.root / f"{name}{tag}.log"
    fh = log.open("ab")
    popen = subprocess.Popen([sys.executable, "-m", "mash", role, "serve", "--config",
                              str(config)], stdout=fh, stderr=fh)
    return Proc(name, popen, log)


@contextmanager
def processes() -> Iterator[list[Proc]]:
    procs: list[Proc] = []
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.popen.poll() is None:
                with suppress(ProcessLookupError):
                    os.kill(proc.popen.pid, signal.SIGCONT)  # a stopped process can't exit
                proc.stop(timeout=5)


class ThreadedFederation:
    """A Running federation on an event loop in its own thread, for synchronous tests
    (hypothesis drives many examples through one federation this way)."""

    def __init__(self, fed: federation.Federation, agencies: list[str]) -> None:
        import threading

        self.fed = fed
        self.run = Running(fed)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(self.run.start_broker())
        for agency in agencies:
            self.call(self.run.start_agent(agency))

    def call(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def channel(self, stem: str = "mash-client") -> grpc.Channel:
        tls = client_tls(self.fed, stem)
        return grpc.secure_channel(f"127.0.0.1:{self.fed.broker_port}",
                                   tls.channel_credentials(),
                                   options=[*channel_options("localhost"),
                                            ("grpc.max_send_message_length", 64 << 20)])

    def close(self) -> None:
        self.call(self.run.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
