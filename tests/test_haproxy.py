"""deploy/haproxy/haproxy.cfg, as shipped, in front of two real brokers: lookups through a
real HAProxy (TCP mode, mutual TLS ending at the broker), and through it when one is gone."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mash.client import BrokerClient, ClientConfig
from mash.demo.federation import free_port
from mash.v1 import answer_pb2 as R
from tests.helpers import Running, build_federation, lookup_request
from tests.test_client_brokers import lookups

CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "haproxy" / "haproxy.cfg"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
AGENCIES = ["police", "health"]

pytestmark = pytest.mark.skipif(
    not Path(HAPROXY).exists() and not os.environ.get("MASH_REQUIRE_HAPROXY"),
    reason="needs Debian's haproxy (.ci/run installs it)")


def test_the_shipped_config_is_valid() -> None:
    env = {**os.environ, "MASH_LB_BIND": "127.0.0.1:7443", "MASH_BROKER_1": "127.0.0.1:7444",
           "MASH_BROKER_2": "127.0.0.1:7445"}
    result = subprocess.run([HAPROXY, "-c", "-f", str(CONFIG)], env=env, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = {**env, "MASH_BROKER_2": "not an address"}  # positive control: -c can fail
    assert subprocess.run([HAPROXY, "-c", "-f", str(CONFIG)], env=broken,
                          capture_output=True, check=False).returncode != 0


@pytest.fixture
def haproxy_port(tmp_path: Path) -> Iterator[tuple[int, Any]]:
    """Yields (port, start) where start(broker_ports) runs HAProxy on that port."""
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []

    def start(broker_ports: list[int]) -> None:
        env = {**os.environ, "MASH_LB_BIND": f"127.0.0.1:{port}",
               "MASH_BROKER_1": f"127.0.0.1:{broker_ports[0]}",
               "MASH_BROKER_2": f"127.0.0.1:{broker_ports[1]}"}
        log = (tmp_path / "haproxy.log").open("ab")
        procs.append(subprocess.Popen([HAPROXY, "-db", "-f", str(CONFIG)], env=env,
                                      stdout=log, stderr=log))

    yield port, start
    for proc in procs:
        proc.terminate()
        proc.wait(5)


async def test_lookups_through_haproxy_reach_both_brokers_and_survive_one(
        tmp_path: Path, haproxy_port: tuple[int, Any]) -> None:
    port, start = haproxy_port
    fed = build_federation(tmp_path / "fed", AGENCIES, background=50, brokers=2)
    run = Running(fed)
    try:
        await run.start_broker(1)
        await run.start_broker(2)
        for agency in AGENCIES:
            await run.start_agent(agency)
        start(fed.broker_ports)
        cfg = ClientConfig.load(fed.client_config)
        cfg.broker = f"127.0.0.1:{port}"  # the analyst knows only the load balancer
        await asyncio.sleep(1.5)  # HAProxy's first health checks (rise 2, 500 ms apart)

        clients = [BrokerClient(cfg) for _ in range(4)]  # four connections, held together
        try:
            answered = await asyncio.gather(*(asyncio.to_thread(c.lookup, lookup_request())
                                              for c in clients))
        finally:
            for client in clients:
                client.close()
        # the analyst's certificate reached the broker (tokens are bound to it): TLS ends there
        assert all({a.state for a in r.answers} == {R.ANSWER_STATE_KNOWN} for r in answered)
        b1, b2 = run.broker, run.more_brokers[2]
        assert b1 is not None
        assert lookups(b1) and lookups(b2)  # both brokers served some

        # a connection that HAProxy gave to broker 2, which then goes away
        held: list[BrokerClient] = []
        try:
            for _ in range(8):
                client = BrokerClient(cfg)
                held.append(client)
                on_b2 = len(lookups(b2))
                await asyncio.to_thread(client.lookup, lookup_request())
                if len(lookups(b2)) > on_b2:
                    break
            else:
                raise AssertionError("HAProxy sent no connection to broker 2")
            await run.stop_broker(2)
            before = len(lookups(b1))
            for _ in range(4):
                response = await asyncio.to_thread(client.lookup, lookup_request())
                assert {a.state for a in response.answers} == {R.ANSWER_STATE_KNOWN}
        finally:
            for c in held:
                c.close()
        assert len(lookups(b1)) == before + 4  # each answered once, by the broker still up
    finally:
        await run.stop()
