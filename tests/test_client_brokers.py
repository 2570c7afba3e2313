"""The analyst's client over several brokers: round robin, health checks, retries."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import grpc
import pytest

from mash import balancing
from mash.audit.config import AuditConfig
from mash.broker.server import Broker
from mash.client import BrokerClient, ClientConfig
from mash.errors import ConfigError
from mash.v1 import answer_pb2 as R
from mash.v1 import lookup_pb2
from tests.helpers import Running, build_federation, lookup_request

AGENCIES = ["police", "health"]


def events(broker: Broker) -> list[dict[str, Any]]:
    """Every entry of the broker's own audit chain, as recorded."""
    assert broker.audit is not None
    audit: AuditConfig = broker.cfg.audit
    rows = broker.audit.store.entries(audit.writer_id, 0, 100_000)
    return [json.loads(row.body) for row in rows if row.body]


def lookups(broker: Broker) -> list[dict[str, Any]]:
    return [e for e in events(broker) if e["event"] in ("lookup", "retry")]


@pytest.fixture
async def two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MASH_AUDIT_WRITE_TIMEOUT", "0.3")  # a locked audit fails fast
    fed = build_federation(tmp_path, AGENCIES, background=50, brokers=2)
    run = Running(fed)
    await run.start_broker(1)
    await run.start_broker(2)
    for agency in AGENCIES:
        await run.start_agent(agency)
    try:
        yield run
    finally:
        await run.stop()


def _client(run: Running, **kw: Any) -> BrokerClient:
    cfg = ClientConfig.load(run.fed.client_config)
    for key, value in kw.items():
        setattr(cfg, key, value)
    return BrokerClient(cfg)


async def _lookups(client: BrokerClient, n: int) -> list[lookup_pb2.LookupResponse]:
    return [await asyncio.to_thread(client.lookup, lookup_request()) for _ in range(n)]


async def test_round_robin_over_brokers_and_health_takes_one_out(two: Running) -> None:
    b1, b2 = two.broker, two.more_brokers[2]
    assert b1 is not None
    with _client(two) as client:
        answered = await _lookups(client, 6)
        assert all({a.state for a in r.answers} == {R.ANSWER_STATE_KNOWN} for r in answered)
        # both brokers served some (round robin), and each lookup is one lookup, on one
        assert len(lookups(b1)) >= 2 and len(lookups(b2)) >= 2
        assert len(lookups(b1)) + len(lookups(b2)) == 6

        before = len(lookups(b2))
        await b2.health.set(balancing.HEALTH_SERVICE, False)  # draining: out of rotation
        await asyncio.sleep(0.3)
        await _lookups(client, 6)
        assert len(lookups(b2)) == before
        await b2.health.set(balancing.HEALTH_SERVICE, True)  # and back in
        await asyncio.sleep(0.3)
        await _lookups(client, 6)
        assert len(lookups(b2)) > before


async def test_unavailable_is_retried_on_another_broker_under_the_same_lookup_id(
        two: Running) -> None:
    b1, b2 = two.broker, two.more_brokers[2]
    assert b1 is not None
    # broker 2 cannot write its audit (another process holds the lock): it answers every
    # lookup UNAVAILABLE, asking nobody
    lock = sqlite3.connect(two.fed.root / "audit" / "broker-2.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        with _client(two, attempts=1) as once:  # positive control: without retries, it fails
            failures = []
            for _ in range(4):
                try:
                    await asyncio.to_thread(once.lookup, lookup_request())
                except grpc.RpcError as exc:
                    failures.append(exc.code())
            assert failures and set(failures) == {grpc.StatusCode.UNAVAILABLE}
        with _client(two) as client:
            answered = await _lookups(client, 6)
            assert client.retried >= 1
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert all({a.state for a in r.answers} == {R.ANSWER_STATE_KNOWN} for r in answered)
    on_b1 = lookups(b1)
    retries = [e for e in on_b1 if e["event"] == "retry"]
    # each retried lookup is one retry entry on the broker that answered it (attempt 2, or
    # 3 when round robin gave the retry to the locked broker once more), never a lookup
    assert 1 <= len(retries) <= client.retried
    assert all(re.fullmatch(r"attempt [23]", e["detail"]) for e in retries)
    answered_ids = {r.lookup_id for r in answered}
    assert {e["lookup_id"] for e in retries} <= answered_ids
    ids = [e["lookup_id"] for e in on_b1]
    assert len(ids) == len(set(ids))  # one lookup id, one lookup or retry entry
    assert {i for i in ids if i in answered_ids} == answered_ids
    answers = [e for e in events(b1) if e["event"] == "answers"]
    assert answered_ids <= {e["lookup_id"] for e in answers}
    assert not [e for e in lookups(b2) if e["lookup_id"] in answered_ids]


@pytest.mark.parametrize(("request_fields", "message"), [
    ({"lookup_id": "not-hex"}, "32 lowercase hex"),
    ({"attempt": 2}, "needs the lookup_id"),
    ({"lookup_id": "a" * 32, "attempt": 11}, "start a new lookup"),
])
async def test_bad_lookup_ids_and_attempts_are_refused(two: Running, request_fields: Any,
                                                       message: str) -> None:
    request = lookup_request()
    for key, value in request_fields.items():
        setattr(request, key, value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await two.analyst().lookup(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (caught.value.details() or "")
    request.lookup_id, request.attempt = "b" * 32, 1  # positive control
    assert (await two.analyst().lookup(request)).lookup_id == "b" * 32


def test_several_addresses_make_one_balanced_target() -> None:
    assert balancing.target(["127.0.0.1:1", "127.0.0.1:2"], None) == (
        "ipv4:127.0.0.1:1,127.0.0.1:2", "127.0.0.1")
    assert balancing.target(["localhost:1", "localhost:2"], None) == (
        "ipv4:127.0.0.1:1,127.0.0.1:2", "localhost")
    assert balancing.target(["b.example:7443"], "b.example") == ("b.example:7443", "b.example")
    with pytest.raises(ConfigError, match=r"set broker\.server_name"):
        balancing.target(["127.0.0.1:1", "localhost:2"], None)
    with pytest.raises(ConfigError, match="mix IPv4 and IPv6"):
        balancing.target(["127.0.0.1:1", "[::1]:2"], "localhost")


async def test_mash_agents_shows_every_brokers_links(two: Running) -> None:
    from tests.test_cli import mash

    config = str(two.fed.client_config)
    addresses = [f"127.0.0.1:{p}" for p in two.fed.broker_ports]
    code, out, err = await mash("agents", "--json", "--config", config)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["links"] == {"police": addresses, "health": addresses}
    assert {a["agency_id"] for a in doc["agents"] if a.get("online")} == set(AGENCIES)
    code, out, _ = await mash("agents", "--config", config)
    assert code == 0 and out.count("2/2") == 2

    await two.stop_broker(2)
    code, out, err = await mash("agents", "--json", "--config", config)
    assert code == 0
    assert json.loads(out)["links"] == {"police": addresses[:1], "health": addresses[:1]}
    assert f"broker {addresses[1]} did not answer (unavailable)" in err
    code, out, _ = await mash("agents", "--config", config)
    assert out.count("1/2") == 2
    await two.stop_broker(1)  # none answers: one error line, exit 5
    code, out, err = await mash("agents", "--config", config)
    assert code == 5 and "mash: error: unavailable" in err


async def test_the_consoles_client_uses_every_broker(two: Running) -> None:
    from mash.console import config as console_config_mod
    from mash.console.broker_client import Broker as ConsoleBroker
    from mash.console.sessions import SessionStore
    from tests.console_support import console_config

    path = console_config(two.fed, broker={
        "addresses": [f"127.0.0.1:{p}" for p in two.fed.broker_ports],
        "server_name": "localhost", "timeout_seconds": 15})
    cfg = console_config_mod.load(path)
    assert cfg.broker_address == [f"127.0.0.1:{p}" for p in two.fed.broker_ports]
    console = ConsoleBroker(cfg)
    b1, b2 = two.broker, two.more_brokers[2]
    assert b1 is not None
    token = two.fed.token()
    session, _ = SessionStore(b"s" * 32, dt.timedelta(hours=1)).create(
        token, cfg.auth.verify(token))
    for _ in range(10):  # a new channel each, starting at a random broker
        response = await asyncio.to_thread(console.lookup, session, lookup_request())
        assert {a.state for a in response.answers} == {R.ANSWER_STATE_KNOWN}
    assert lookups(b1) and lookups(b2)  # round robin from the console too
