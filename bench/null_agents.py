"""The floors for the end-to-end benchmark: the cheapest possible answers.

`agents` mode: one stream per agency to the broker (real certificates, real mTLS), answering
every query at once with an empty NOT_KNOWN: the broker's fan-out with no agent work. Like
real agents they take batches of queries and answer a batch in one message.
`servers` mode: plain gRPC health servers with mTLS that the benchmark calls directly, eight
at a time: the bare cost of asking eight parties, with no broker at all.

    python -m bench.null_agents agents --root DIR --agencies police,health,...
    python -m bench.null_agents servers --root DIR --ports 7001,7002,...
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from mash import eventloop
from mash.answers import timestamp
from mash.grpc_options import channel_options, server_options
from mash.health import Health
from mash.identity.tls import TlsFiles
from mash.v1 import agent_pb2, agent_pb2_grpc, answer_pb2


def tls(root: Path, stem: str) -> TlsFiles:
    c = root / "certs"
    return TlsFiles(ca=c / "ca.pem", cert=c / f"{stem}.pem", key=c / f"{stem}.key")


async def null_agent(root: Path, agency: str, broker: str, stop: asyncio.Event) -> None:
    outbox: asyncio.Queue[agent_pb2.ConnectRequest | None] = asyncio.Queue()
    now = timestamp(dt.datetime.now(dt.UTC))

    async def requests() -> AsyncIterator[agent_pb2.ConnectRequest]:
        yield agent_pb2.ConnectRequest(hello=agent_pb2.AgentHello(
            agent_version="null", ready=True, data_as_at=now, policy_revision="null",
            accepts_batches=True))
        while (message := await outbox.get()) is not None:
            yield message

    def empty(query: agent_pb2.Query) -> agent_pb2.QueryAnswer:
        return agent_pb2.QueryAnswer(query_id=query.query_id, answer=answer_pb2.AgencyAnswer(
            agency_id=agency, state=answer_pb2.ANSWER_STATE_NOT_KNOWN, data_as_at=now))

    async with grpc.aio.secure_channel(broker, tls(root, f"{agency}-agent").channel_credentials(),
                                       options=channel_options("localhost")) as channel:
        call = agent_pb2_grpc.AgentServiceStub(channel).Connect(requests())
        stop_task = asyncio.create_task(stop.wait())
        stop_task.add_done_callback(lambda _: (outbox.put_nowait(None), call.cancel()))
        try:
            async for message in call:
                kind = message.WhichOneof("message")
                if kind == "query":
                    outbox.put_nowait(agent_pb2.ConnectRequest(answer=empty(message.query)))
                elif kind == "queries":
                    outbox.put_nowait(agent_pb2.ConnectRequest(answers=agent_pb2.QueryAnswers(
                        answers=[empty(query) for query in message.queries.queries])))
        except grpc.aio.AioRpcError:
            if not stop.is_set():
                raise


async def servers(root: Path, ports: list[int], stop: asyncio.Event) -> None:
    started = []
    for port in ports:
        server = grpc.aio.server(options=server_options())
        health = Health()
        health.add_to(server)
        server.add_secure_port(f"127.0.0.1:{port}", tls(root, "broker-broker")
                               .server_credentials())
        await server.start()
        await health.set("", True)
        started.append(server)
    await stop.wait()
    for server in started:
        await server.stop(0)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("agents", "servers"))
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--broker", default="")
    parser.add_argument("--agencies", default="")
    parser.add_argument("--ports", default="")
    args = parser.parse_args()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.mode == "agents":
        await asyncio.gather(*(null_agent(args.root, a, args.broker, stop)
                               for a in args.agencies.split(",")))
    else:
        await servers(args.root, [int(p) for p in args.ports.split(",")], stop)


if __name__ == "__main__":
    eventloop.run(main())  # the same loop as real agents, so the floor compares like with like
