"""An agent holds a stream to every broker: each answers lookups, each link is in health."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mash import addresses as brokers
from mash.agent import config as agent_config
from mash.agent.links import LINK_HEALTH_PREFIX
from mash.errors import ConfigError
from mash.v1 import answer_pb2 as R
from tests.helpers import Running, build_federation, lookup_request, wait_until

AGENCIES = ["police", "health"]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _rewrite(path: Path, broker: dict[str, Any]) -> Path:
    cfg = yaml.safe_load(path.read_text())
    cfg["broker"] = broker
    out = path.with_name("edited-" + path.name)
    out.write_text(yaml.safe_dump(cfg))
    return out


def test_addresses_list_and_old_single_address(tmp_path: Path) -> None:
    fed = build_federation(tmp_path, AGENCIES, background=20, brokers=2)
    cfg = agent_config.load(fed.agent_configs["police"])
    assert cfg.brokers == [f"127.0.0.1:{p}" for p in fed.broker_ports]
    old = agent_config.load(_rewrite(fed.agent_configs["police"],
                                     {"address": "127.0.0.1:7443", "server_name": "localhost"}))
    assert old.brokers == ["127.0.0.1:7443"]


@pytest.mark.parametrize(("broker", "message"), [
    ({"address": "a:1", "addresses": ["b:2"]}, "either address or addresses"),
    ({"addresses": []}, "non-empty list"),
    ({"addresses": ["broker.example"]}, "is not host:port"),
    ({"addresses": ["a:1", "a:1"]}, "listed twice"),
    ({"addresses": ["a:99999"]}, "is not host:port"),
])
def test_bad_addresses_are_refused(tmp_path: Path, broker: dict[str, Any], message: str) -> None:
    fed = build_federation(tmp_path, ["police"], background=20)
    with pytest.raises(ConfigError, match=message):
        agent_config.load(_rewrite(fed.agent_configs["police"], broker))


def test_a_name_with_several_addresses_is_one_link_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the resolver returns for a name with an A record per broker becomes one link
    per address, each checking the certificate against the configured name."""
    def resolve(host: str, port: int, **_kw: Any) -> list[Any]:
        assert host == "brokers.mash.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.1")]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    assert brokers.expand(["brokers.mash.example:7443", "10.0.0.9:7443"], None) == [
        brokers.BrokerAddress("10.0.0.1:7443", "brokers.mash.example"),
        brokers.BrokerAddress("10.0.0.2:7443", "brokers.mash.example"),
        brokers.BrokerAddress("10.0.0.9:7443", None)]


def test_a_name_with_one_address_is_dialled_by_name() -> None:
    assert brokers.expand(["localhost:7443"], None) == [
        brokers.BrokerAddress("localhost:7443", None)]


async def _health(port: int, service: str) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5)
        return int(reply.status)


async def test_every_broker_answers_and_a_broker_down_delays_no_other(tmp_path: Path) -> None:
    overrides = {a: {"health_listen": "127.0.0.1:0"} for a in AGENCIES}
    fed = build_federation(tmp_path, AGENCIES, background=50, brokers=2,
                           agent_overrides=overrides)
    run = Running(fed)
    try:
        await run.start_broker(1)
        await run.start_broker(2)
        for agency in AGENCIES:
            await run.start_agent(agency)  # waits for a stream to every broker
        police = run.agents["police"]
        assert police.health_port is not None
        links = [LINK_HEALTH_PREFIX + f"127.0.0.1:{p}" for p in fed.broker_ports]
        for n in (1, 2):
            response = await run.analyst(broker=n).lookup(lookup_request())
            states = {a.agency_id: a.state for a in response.answers}
            assert states == {"police": R.ANSWER_STATE_KNOWN, "health": R.ANSWER_STATE_KNOWN}
        for service in links:
            assert await _health(police.health_port, service) == SERVING

        await run.stop_broker(2)
        await wait_until(lambda: not police.link.links[1].connected)
        assert await _health(police.health_port, links[1]) == NOT_SERVING
        assert await _health(police.health_port, links[0]) == SERVING
        assert await _health(police.health_port, "mash.v1.Agent") == SERVING
        response = await run.analyst(broker=1).lookup(lookup_request())
        assert {a.state for a in response.answers} == {R.ANSWER_STATE_KNOWN}

        await run.start_broker(2)  # the same port: every agent reconnects to it
        await wait_until(lambda: all(a.link.all_connected for a in run.agents.values()))
        response = await run.analyst(broker=2).lookup(lookup_request())
        assert {a.state for a in response.answers} == {R.ANSWER_STATE_KNOWN}
        assert await _health(police.health_port, links[1]) == SERVING
    finally:
        await run.stop()
