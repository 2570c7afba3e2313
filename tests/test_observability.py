"""Health and metrics: the gRPC health service on the broker and agents, and Prometheus
metrics for lookups, answer states per agency, latency and agents online."""

from __future__ import annotations

import asyncio
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mash.demo.federation import free_port
from tests.helpers import Running, analyst_channel, build_federation, lookup_request

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return reply.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} in metrics")


async def check(stub, service: str) -> int:
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return reply.status


async def test_health_and_metrics(tmp_path) -> None:
    broker_metrics, agent_metrics = free_port(), free_port()
    fed = build_federation(tmp_path / "fed", agencies=["police", "health", "education"],
                           broker_overrides={"metrics_port": broker_metrics},
                           agent_overrides={"police": {"metrics_port": agent_metrics,
                                                       "health_listen": "127.0.0.1:0"}})
    run = Running(fed)
    await run.start_broker()
    police = await run.start_agent("police")
    await run.start_agent("health")
    try:
        broker_health = health_pb2_grpc.HealthStub(analyst_channel(fed))
        assert await check(broker_health, "") == SERVING
        assert await check(broker_health, "mash.v1.LookupService") == SERVING
        agent_health = health_pb2_grpc.HealthStub(
            grpc.aio.insecure_channel(f"127.0.0.1:{police.health_port}"))
        assert await check(agent_health, "") == SERVING
        assert await check(agent_health, "mash.v1.Agent") == SERVING

        await run.analyst().lookup(lookup_request())
        text = scrape(broker_metrics)
        assert metric(text, "mash_broker_lookups_total", outcome="answered") >= 1
        assert metric(text, "mash_broker_answers_total", agency="police", state="KNOWN") >= 1
        assert metric(text, "mash_broker_answers_total", agency="education",
                      state="NOT_CHECKED", reason="agent offline") >= 1
        assert metric(text, "mash_broker_lookup_seconds_count") >= 1
        assert metric(text, "mash_broker_agency_answer_seconds_count", agency="police") >= 1
        assert metric(text, "mash_broker_agents_online") == 2
        text = scrape(agent_metrics)
        assert metric(text, "mash_agent_queries_total", agency="police", state="KNOWN") >= 1
        assert metric(text, "mash_agent_records", agency="police") > 0
        assert metric(text, "mash_agent_connected", agency="police") == 1

        # the broker goes away: the agent says it is not serving lookups
        await run.broker.stop(grace=0.2)
        run.broker = None
        for _ in range(100):
            if await check(agent_health, "mash.v1.Agent") == NOT_SERVING:
                break
            await asyncio.sleep(0.05)
        assert await check(agent_health, "mash.v1.Agent") == NOT_SERVING
        assert await check(agent_health, "") == SERVING  # alive, records loaded
    finally:
        await run.stop()
