"""Several brokers and their agents as real processes, analysts' lookups as load, and one
broker killed (or each restarted in turn) meanwhile: for tests/test_failover.py and bench/ha.py.

Every figure is read back from what the processes recorded: the answers the clients got, and
each broker's and agent's own audit store (SQLite, read once every process has stopped).
"""

from __future__ import annotations

import itertools
import json
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mash.answers import NOT_CHECKED_LABELS, STATE_LABELS
from mash.client import BrokerClient, ClientConfig
from mash.demo import federation
from mash.demo.federation import broker_writer
from mash.grpc_options import channel_options
from mash.v1 import answer_pb2, lookup_pb2, lookup_pb2_grpc
from tests.helpers import Proc, build_federation, client_tls, lookup_request, spawn

# A person some agencies know, and one nobody does (every agency answers NOT_KNOWN).
REQUESTS = (lookup_request(),
            lookup_request(name="Zebedee Quillfeather", dob="1931-02-03", postcodes=("ZE1 9ZZ",)))


@dataclass
class Outcome:
    """One lookup as its client saw it."""

    started: float
    finished: float
    lookup_id: str = ""  # "" when it failed
    states: dict[str, str] = field(default_factory=dict)  # agency -> KNOWN, NOT_KNOWN...
    error: str = ""  # the gRPC status when it failed after every retry
    attempts: int = 1  # 2 and up: tried again on another broker
    reasons: dict[str, str] = field(default_factory=dict)  # agency -> why NOT_CHECKED


class HaFederation:
    """`brokers` brokers and an agent per agency, each a `python -m mash ... serve`."""

    def __init__(self, root: Path, agencies: list[str], brokers: int, background: int) -> None:
        # one analyst drives the whole load: a limit high enough not to refuse it
        self.fed = build_federation(
            root, agencies, background=background, brokers=brokers,
            broker_overrides={"rate_limit": {"lookups_per_minute": 100_000, "burst": 10_000}})
        self.agencies = agencies
        self.brokers: dict[int, Proc] = {}
        self.agents: dict[str, Proc] = {}
        self._starts = 0

    def start(self, timeout: float = 120) -> None:
        for n in range(1, len(self.fed.broker_ports) + 1):
            self.start_broker(n)
        for n in self.brokers:
            self.wait_serving(n, timeout)
        for agency in self.agencies:
            self.agents[agency] = spawn(self.fed, "agent", agency)
        for n in self.brokers:
            self.wait_agents(n, timeout)

    def start_broker(self, n: int) -> Proc:
        self._starts += 1
        self.brokers[n] = spawn(self.fed, "broker", tag=f"-{self._starts}", broker=n)
        return self.brokers[n]

    def channel(self, n: int) -> grpc.Channel:
        return grpc.secure_channel(f"127.0.0.1:{self.fed.broker_ports[n - 1]}",
                                   client_tls(self.fed).channel_credentials(),
                                   options=channel_options("localhost"))

    def wait_serving(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with self.channel(n) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.05)
        raise AssertionError(f"broker {n} did not start:\n{self.brokers[n].text()[-2000:]}")

    def online(self, n: int) -> set[str]:
        """The agencies whose agents broker n has a ready stream from."""
        with self.channel(n) as channel:
            reply = lookup_pb2_grpc.FederationServiceStub(channel).ListAgents(
                lookup_pb2.ListAgentsRequest(), timeout=2,
                metadata=(("authorization", f"Bearer {self.fed.token()}"),))
        return {a.agency_id for a in reply.agents if a.online and a.ready}

    def wait_agents(self, n: int, timeout: float = 60) -> float:
        """Seconds until every agent is online and ready at broker n."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                if self.online(n) >= set(self.agencies):
                    return time.monotonic() - started
            except grpc.RpcError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"agents not all online at broker {n} within {timeout} s")

    def kill(self, n: int) -> None:
        self.brokers[n].signal(signal.SIGKILL)
        self.brokers[n].popen.wait()

    def restart(self, n: int) -> None:
        """Stop broker n (SIGTERM: it drains) and start it again on the same port."""
        self.brokers[n].stop()
        self.start_broker(n)
        self.wait_serving(n)

    def processes(self) -> dict[str, Proc]:
        return {**{f"broker-{n}": p for n, p in self.brokers.items()}, **self.agents}

    def stop(self) -> None:
        for proc in [*self.agents.values(), *self.brokers.values()]:
            proc.stop()


class Load:
    """`workers` analysts, each with a client over every broker, looking up until stopped."""

    def __init__(self, fed: federation.Federation, workers: int, timeout: float = 10) -> None:
        self.fed = fed
        self.outcomes: list[Outcome] = []
        self.retried = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._timeout = timeout
        self._threads = [threading.Thread(target=self._work, args=(k,), daemon=True)
                         for k in range(workers)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self._timeout + 5)

    def _work(self, k: int) -> None:
        with BrokerClient(ClientConfig.load(self.fed.client_config)) as client:
            i = k
            while not self._stop.is_set():
                outcome = Outcome(started=time.monotonic(), finished=0.0)
                before = client.retried
                try:
                    response = client.lookup(REQUESTS[i % len(REQUESTS)], timeout=self._timeout)
                    outcome.lookup_id = response.lookup_id
                    outcome.states = {a.agency_id: STATE_LABELS.get(a.state, "SEALED")
                                      for a in response.answers}
                    outcome.reasons = {a.agency_id: NOT_CHECKED_LABELS.get(
                        a.not_checked_reason, "") for a in response.answers
                        if a.state == answer_pb2.ANSWER_STATE_NOT_CHECKED}
                except grpc.RpcError as exc:
                    outcome.error = exc.code().name  # type: ignore[attr-defined]
                outcome.finished = time.monotonic()
                outcome.attempts = 1 + client.retried - before
                with self._lock:
                    self.outcomes.append(outcome)
                i += 1
            with self._lock:
                self.retried += client.retried

    def answered_since(self, moment: float) -> int:
        with self._lock:
            return sum(1 for o in self.outcomes if not o.error and o.finished > moment)


def _bodies(db: Path) -> Iterator[dict[str, Any]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        for (body,) in conn.execute("SELECT body FROM audit_entries WHERE body IS NOT NULL"):
            yield json.loads(body)


def audit_figures(fed: federation.Federation, agencies: list[str],
                  outcomes: list[Outcome]) -> dict[str, int]:
    """What the audit stores say of the answered lookups (every process stopped)."""
    asked: set[str] = set()  # lookup ids a broker recorded before fanning out
    answered: set[str] = set()  # ... and before returning the answers
    retries: set[str] = set()
    for n in range(1, len(fed.broker_ports) + 1):
        for entry in _bodies(fed.root / "audit" / f"{broker_writer(n)}.db"):
            if entry["event"] in ("lookup", "retry"):
                asked.add(entry["lookup_id"])
            if entry["event"] == "retry":
                retries.add(entry["lookup_id"])
            if entry["event"] == "answers":
                answered.add(entry["lookup_id"])
    searched: set[tuple[str, str, str]] = set()  # (lookup id, agency, state) from its agent
    for agency in agencies:
        for entry in _bodies(fed.root / "audit" / f"{agency}.db"):
            if entry["event"] == "query":
                for o in entry["outcomes"]:
                    searched.add((entry["lookup_id"], agency, o["state"]))
    ok = [o for o in outcomes if not o.error]
    return {
        "answered_without_audit": sum(1 for o in ok if o.lookup_id not in asked
                                      or o.lookup_id not in answered),
        "not_known_unsearched": sum(
            1 for o in ok for agency, state in o.states.items()
            if state == "NOT_KNOWN" and (o.lookup_id, agency, "NOT_KNOWN") not in searched),
        "not_known_answers": sum(1 for o in ok for s in o.states.values() if s == "NOT_KNOWN"),
        "retried_answered": sum(1 for o in ok if o.attempts > 1),
        # answered after a retry, but with no "retry" entry in any broker's audit
        "retry_unaudited": sum(1 for o in ok if o.attempts > 1 and o.lookup_id not in retries),
        # NOT_CHECKED for any reason but the agreements' (no agreement covers the purpose)
        "not_checked_answers": sum(1 for o in ok for r in o.reasons.values()
                                   if r != "no agreement"),
    }


def not_checked_reasons(outcomes: list[Outcome]) -> dict[str, int]:
    """How many answers were NOT_CHECKED, by reason."""
    return dict(Counter(r for o in outcomes for r in o.reasons.values()))


def max_gap(outcomes: list[Outcome], since: float, until: float) -> float:
    """The longest time between `since` and `until` without a lookup answered."""
    times = sorted(o.finished for o in outcomes if not o.error and since < o.finished < until)
    points = [since, *times, until]
    return max(b - a for a, b in itertools.pairwise(points))
