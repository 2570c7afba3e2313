"""Server reflection (v1 and v1alpha) and Health (Check, List) on the broker, as a tool written
elsewhere sees them: buf curl, over the broker's real mTLS."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mash.broker.server import AGENT_SERVICE, SERVICE_NAMES
from tests.helpers import Running, client_tls

ROOT = Path(__file__).resolve().parents[1]


def _buf() -> str:
    local = ROOT / "node_modules" / ".bin" / "buf"
    found = str(local) if local.exists() else shutil.which("buf")
    assert found, "buf is not installed: `make test` installs it with npm"
    return found


async def _buf_curl(running: Running, *args: str) -> tuple[int, str, str]:
    tls = client_tls(running.fed)
    proc = await asyncio.create_subprocess_exec(
        _buf(), "curl", "--protocol", "grpc", "--http2-prior-knowledge",
        "--cacert", str(tls.ca), "--cert", str(tls.cert), "--key", str(tls.key),
        "--servername", "localhost", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("version", ["grpc-v1", "grpc-v1alpha"])
async def test_reflection_lists_and_describes_the_services(running: Running,
                                                           version: str) -> None:
    url = f"https://127.0.0.1:{running.fed.broker_port}"
    code, out, err = await _buf_curl(running, "--reflect-protocol", version,
                                     "--list-services", url)
    assert code == 0, err
    services = set(out.split())
    assert set(SERVICE_NAMES) | {"grpc.health.v1.Health"} <= services
    assert {"grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"} <= services
    # and the schema comes through reflection: methods of a service, and an RPC called by name
    code, out, err = await _buf_curl(running, "--reflect-protocol", version, "--list-methods",
                                     url)
    assert code == 0, err
    methods = set(out.split())
    assert {"mash.v1.LookupService/Lookup", "mash.v1.AgentService/Connect",
            "grpc.health.v1.Health/List"} <= methods
    code, out, err = await _buf_curl(running, "--reflect-protocol", version, "--data", "{}",
                                     f"{url}/grpc.health.v1.Health/Check")
    assert code == 0, err
    assert json.loads(out) == {"status": "SERVING"}


async def test_reflection_v1_is_itself_reflectable(running: Running) -> None:
    url = f"https://127.0.0.1:{running.fed.broker_port}"
    code, out, err = await _buf_curl(running, "--reflect-protocol", "grpc-v1", "--list-methods",
                                     url)
    assert code == 0, err
    assert "grpc.reflection.v1.ServerReflection/ServerReflectionInfo" in out.split()


async def test_health_list_gives_every_service_and_follows_shutdown(running: Running) -> None:
    url = f"https://127.0.0.1:{running.fed.broker_port}"
    code, out, err = await _buf_curl(running, "--reflect-protocol", "grpc-v1", "--data", "{}",
                                     f"{url}/grpc.health.v1.Health/List")
    assert code == 0, err
    statuses = {name: s["status"] for name, s in json.loads(out)["statuses"].items()}
    # the analysts' services and the agents' one (SERVING from the start, for agents to connect)
    assert statuses == {name: "SERVING" for name in ("", *SERVICE_NAMES, AGENT_SERVICE)}
    # once the broker starts to shut down, List says NOT_SERVING for all of them
    assert running.broker is not None
    await running.broker.health.shutdown()
    tls = client_tls(running.fed)
    async with grpc.aio.secure_channel(
            f"127.0.0.1:{running.fed.broker_port}", tls.channel_credentials(),
            options=[("grpc.ssl_target_name_override", "localhost")]) as channel:
        listed = await health_pb2_grpc.HealthStub(channel).List(health_pb2.HealthListRequest(),
                                                                timeout=10)
    assert {n: s.status for n, s in listed.statuses.items()} == {
        name: health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", *SERVICE_NAMES, AGENT_SERVICE)}
