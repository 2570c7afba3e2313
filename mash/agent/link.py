"""The agent's outbound stream to the broker: hello, heartbeats, queries down, answers up.

The agent always dials out (no inbound firewall hole at the agency) and reconnects with
exponential backoff and jitter. A broker that goes silent for three heartbeats is treated
as gone and the stream is re-established.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import grpc

from mash import __version__
from mash.addresses import BrokerAddress
from mash.agent import metrics
from mash.agent.batches import QueryQueue
from mash.agent.config import AgentConfig
from mash.agent.handler import QueryHandler
from mash.agent.state import AgentState
from mash.answers import STATE_LABELS, timestamp
from mash.audit.exchange import HeadExchange, StreamWitnessing
from mash.batching import batches
from mash.errors import IdentityError
from mash.grpc_options import channel_options
from mash.identity import pinning
from mash.identity.revocation import RevocationError, RevocationList
from mash.logs import get_logger
from mash.v1 import agent_pb2, agent_pb2_grpc, answer_pb2

log = get_logger(__name__)
# Answers one query received; plain queries go through the queue, blind ones to its executor.
Receive = Callable[[agent_pb2.Query, QueryQueue], Awaitable[agent_pb2.QueryAnswer]]
MAX_CONCURRENT_QUERIES = 16


class BrokerLink:
    """One broker's stream. Several links (one per broker) share the agent's query queue;
    each answer goes back on the stream its query came on."""

    def __init__(self, cfg: AgentConfig, address: BrokerAddress, state: AgentState,
                 handler: QueryHandler, queries: QueryQueue, *,
                 on_connected: Callable[[bool], None] | None = None,
                 receive: Receive | None = None, exchange: HeadExchange | None = None) -> None:
        self.cfg = cfg
        self.address = address
        self.exchange = exchange  # audit heads to and from the broker (mash.audit.exchange)
        self.state = state
        self.handler = handler
        self.receive = receive or self._receive_plain
        self.connected = False
        self.broker_id = ""  # as the broker's welcome names it
        self._on_connected = on_connected
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_QUERIES)
        self.queries = queries
        self._outbox: asyncio.Queue[agent_pb2.ConnectRequest | None] | None = None
        self.revocation: RevocationList | None = None  # set by Agent when configured
        self._broker_pem = b""  # the certificate the broker presented on this stream
        self._drop: Callable[[str], None] | None = None  # ends the current stream

    async def _receive_plain(self, query: agent_pb2.Query,
                             queries: QueryQueue) -> agent_pb2.QueryAnswer:
        return agent_pb2.QueryAnswer(query_id=query.query_id,
                                     answer=await self.handler.answer_queued(query, queries))

    def _set_connected(self, value: bool) -> None:
        self.connected = value
        metrics.LINK_UP.labels(self.cfg.agency, self.address.target).set(1 if value else 0)
        if self._on_connected:
            self._on_connected(value)

    def _status(self) -> dict[str, object]:
        snapshot = self.state.snapshot
        status: dict[str, object] = {
            "policy_revision": self.handler.policy.revision,
            "ready": snapshot is not None,
            "record_count": snapshot.record_count if snapshot else 0,
            "data_status": self.state.data_status(),
        }
        if snapshot is not None:
            status["data_as_at"] = snapshot.as_at_proto
        return status

    def _hello(self) -> agent_pb2.ConnectRequest:
        hello = agent_pb2.AgentHello(
            agent_version=__version__, accepts_batches=True,
            accepts_blind=self.cfg.blind is not None,
            heartbeat_interval_ms=round(self.cfg.heartbeat_seconds * 1000),
            **self._status())  # type: ignore[arg-type]
        snapshot = self.state.snapshot
        if snapshot is not None:
            hello.sources.extend(snapshot.sources_proto)
        return agent_pb2.ConnectRequest(hello=hello)

    def _heartbeat(self) -> agent_pb2.ConnectRequest:
        beat = agent_pb2.Heartbeat(sent_at=timestamp(dt.datetime.now(dt.UTC)),
                                   **self._status())  # type: ignore[arg-type]
        return agent_pb2.ConnectRequest(heartbeat=beat)

    def notify_status(self) -> None:
        """Tell the broker now (not at the next heartbeat) that readiness or data changed."""
        if self._outbox is not None and self.connected:
            self._outbox.put_nowait(self._heartbeat())

    def renew(self) -> None:
        """The TLS files were replaced: a new stream, on a channel made from them."""
        if self._drop is not None:
            self._drop("the agent's TLS files were replaced: reconnecting with them")

    def recheck(self) -> None:
        """The revocation list changed: end the stream if the broker no longer passes it."""
        if self.revocation is None or self._drop is None:
            return
        try:
            self.revocation.check(self._broker_pem)
        except RevocationError as exc:
            self._drop(str(exc))

    async def run(self, stop: asyncio.Event) -> None:
        """Hold a stream to the broker until `stop` is set, reconnecting with backoff."""
        delay = self.cfg.reconnect_initial_seconds
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self._session(stop)
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                log.warning("broker_stream_failed", broker=self.address.target,
                            code=exc.code().name, detail=(exc.details() or "")[:200])
            except (pinning.PeerRefused, RevocationError) as exc:
                log.error("broker_refused", broker=self.address.target, reason=str(exc))
            except IdentityError as exc:
                log.warning("broker_stream_failed", broker=self.address.target,
                            code="UNAVAILABLE", detail=str(exc))
            except Exception as exc:
                log.exception("broker_stream_error", broker=self.address.target,
                              error=type(exc).__name__)
            finally:
                if self.connected:
                    self._set_connected(False)
            if stop.is_set():
                break
            if time.monotonic() - started > 30:
                delay = self.cfg.reconnect_initial_seconds  # it was up for a while
            metrics.RECONNECTS.labels(self.cfg.agency).inc()
            wait = delay * (0.5 + random.random())
            log.info("broker_reconnect_wait", broker=self.address.target,
                     seconds=round(wait, 2))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
            delay = min(delay * 2, self.cfg.reconnect_max_seconds)

    async def _session(self, stop: asyncio.Event) -> None:
        outbox: asyncio.Queue[agent_pb2.ConnectRequest | None] = asyncio.Queue()
        self._outbox = outbox
        tasks: set[asyncio.Task[None]] = set()

        broker_batches = False  # until its welcome says otherwise

        async def requests() -> AsyncIterator[agent_pb2.ConnectRequest]:
            yield self._hello()
            while True:
                messages = [await outbox.get()]
                while broker_batches and not outbox.empty():  # a batch's answers, together
                    messages.append(outbox.get_nowait())
                for message in _batched(messages):
                    if message is None:
                        return
                    yield message

        # Which broker answers, and is it one we accept? Then gRPC's handshake holds the
        # channel to exactly that identity (mash.identity.pinning).
        presented = await pinning.fetch(self.address.target, self.cfg.tls,
                                        self.address.server_name)
        target = pinning.choose(presented, self.cfg.broker_pins, self.address.target)
        if self.revocation is not None:
            self.revocation.check(presented.pem)
        self._broker_pem = presented.pem
        credentials = self.cfg.tls.channel_credentials()
        async with grpc.aio.secure_channel(
            self.address.target, credentials, options=channel_options(target)
        ) as channel:
            call = agent_pb2_grpc.AgentServiceStub(channel).Connect(requests())
            last_heard = time.monotonic()
            silence_limit = self.cfg.heartbeat_seconds * 3 + 2
            broker_silent = False
            dropped = False

            def drop(reason: str) -> None:
                nonlocal dropped
                log.warning("broker_stream_dropped", reason=reason)
                dropped = True
                call.cancel()

            self._drop = drop

            async def heartbeats() -> None:
                nonlocal broker_silent
                while True:
                    await asyncio.sleep(self.cfg.heartbeat_seconds)
                    if time.monotonic() - last_heard > silence_limit:
                        log.warning("broker_silent", broker=self.address.target,
                                    seconds=round(time.monotonic() - last_heard))
                        broker_silent = True
                        call.cancel()
                        return
                    await outbox.put(self._heartbeat())

            witnessing: list[StreamWitnessing] = []

            async def stopper() -> None:
                await stop.wait()
                for w in witnessing:  # our last head, for the broker to hold
                    await w.final()
                await outbox.put(None)
                call.cancel()

            def start_witnessing(broker_id: str) -> None:
                if self.exchange is None or witnessing:
                    return
                w = StreamWitnessing(
                    self.exchange, broker_id,
                    lambda m: outbox.put_nowait(agent_pb2.ConnectRequest(audit_head=m)),
                    lambda m: outbox.put_nowait(agent_pb2.ConnectRequest(audit_witness=m)))
                witnessing.append(w)
                spawn(w.run())

            def spawn(coro: Coroutine[Any, Any, None]) -> None:
                task = asyncio.create_task(coro)
                tasks.add(task)
                task.add_done_callback(tasks.discard)

            beat = asyncio.create_task(heartbeats())
            stopping = asyncio.create_task(stopper())
            try:
                async for message in call:
                    last_heard = time.monotonic()
                    kind = message.WhichOneof("message")
                    if kind == "welcome":
                        broker_batches = message.welcome.accepts_batches
                        self.broker_id = message.welcome.broker_id
                        self._set_connected(True)
                        # The hello may predate the end of loading: send the status now.
                        await outbox.put(self._heartbeat())
                        log.info("broker_connected", broker=self.address.target,
                                 broker_id=message.welcome.broker_id,
                                 agency=message.welcome.agency_id)
                        start_witnessing(message.welcome.broker_id or "broker")
                    elif kind == "audit_head" and witnessing:
                        spawn(witnessing[0].on_head(message.audit_head))
                    elif kind == "audit_witness" and witnessing:
                        spawn(witnessing[0].on_witness(message.audit_witness))
                    elif kind in ("query", "queries"):
                        for query in (message.queries.queries if kind == "queries"
                                      else (message.query,)):
                            task = asyncio.create_task(self._receive(query, outbox))
                            tasks.add(task)
                            task.add_done_callback(tasks.discard)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if (broker_silent or dropped) and not (current is not None
                                                       and current.cancelling()):
                    return  # cancelled for silence, or dropped: run() reconnects
                if not stop.is_set():
                    raise
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.CANCELLED or not stop.is_set():
                    raise
            finally:
                self._outbox = None
                self._drop = None
                beat.cancel()
                stopping.cancel()
                for task in tasks:
                    task.cancel()

    async def _receive(self, query: agent_pb2.Query,
                       outbox: asyncio.Queue[agent_pb2.ConnectRequest | None]) -> None:
        """A query off this broker's stream: answered (see mash.agent.handler for the steps)
        and its answer put on the stream it came on, whatever happens."""
        async with self._slots:
            started = time.monotonic()
            try:
                answer = await self.receive(query, self.queries)
            except Exception as exc:  # every query gets an answer: the broker may hold others
                log.exception("query_failed", query_id=query.query_id, error=type(exc).__name__)
                answer = agent_pb2.QueryAnswer(query_id=query.query_id, answer=(
                    self.handler.not_checked(answer_pb2.NOT_CHECKED_REASON_AGENT_ERROR,
                                             "the agent failed while answering; the agency "
                                             "has been alerted through its logs")))
            metrics.query_seconds(self.cfg.agency).observe(time.monotonic() - started)
            state = (STATE_LABELS.get(answer.answer.state, "NOT_CHECKED")
                     if answer.HasField("answer") else "SEALED")
            metrics.queries(self.cfg.agency, state).inc()
        await outbox.put(agent_pb2.ConnectRequest(answer=answer))


def _batched(messages: list[agent_pb2.ConnectRequest | None],
             ) -> list[agent_pb2.ConnectRequest | None]:
    """The messages in order, with each run of answers sent as few messages as gRPC's size
    limit allows (see mash/batching.py)."""
    out: list[agent_pb2.ConnectRequest | None] = []
    run: list[agent_pb2.ConnectRequest] = []

    def flush() -> None:
        for batch in batches(run):
            out.append(batch[0] if len(batch) == 1 else agent_pb2.ConnectRequest(
                answers=agent_pb2.QueryAnswers(answers=[m.answer for m in batch])))
        run.clear()

    for message in messages:
        if message is not None and message.WhichOneof("message") == "answer":
            run.append(message)
        else:
            flush()
            out.append(message)
    flush()
    return out
