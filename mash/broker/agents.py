"""AgentService.Connect: the broker's end of each agent's outbound stream."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import grpc

from mash.answers import timestamp
from mash.audit.exchange import HeadExchange, StreamWitnessing
from mash.broker import metrics
from mash.broker.config import BrokerConfig
from mash.broker.liveness import Liveness, Unresponsive
from mash.broker.registry import AgentSession, Registry
from mash.identity.revocation import RevocationError
from mash.identity.tls import peer_certificate, peer_identity
from mash.logs import get_logger
from mash.rpc import BadMessage
from mash.rpc_errors import abort, abort_invalid
from mash.v1 import agent_pb2, agent_pb2_grpc

log = get_logger(__name__)


class AgentService(agent_pb2_grpc.AgentServiceServicer):
    def __init__(self, cfg: BrokerConfig, registry: Registry,
                 exchange: HeadExchange | None = None) -> None:
        self.cfg = cfg
        self.registry = registry
        self.exchange = exchange  # audit heads to and from agents (mash.audit.exchange)

    async def Connect(
        self, request_iterator: AsyncIterator[agent_pb2.ConnectRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[agent_pb2.ConnectResponse]:
        peer = peer_identity(context)
        if peer is None or peer.kind != "agent":
            log.warning("agent_refused", reason="not an agent certificate",
                        peer=str(peer) if peer else "none")
            await abort(
                context, grpc.StatusCode.PERMISSION_DENIED,
                "only an agency agent's certificate may connect as an agent "
                f"(this one names {peer or 'no MASH identity'})",
                reason="WRONG_CERTIFICATE_KIND" if peer else "NO_MASH_IDENTITY")
        assert peer is not None
        if peer.name not in self.registry.agencies():
            log.warning("agent_refused", reason="agency not registered", agency=peer.name)
            await abort(
                context, grpc.StatusCode.PERMISSION_DENIED,
                f"agency {peer.name!r} is not registered with this broker",
                reason="AGENCY_NOT_REGISTERED")
        certificate = peer_certificate(context) or b""
        if self.registry.revocation is not None:
            try:
                self.registry.revocation.check(certificate)
            except RevocationError as exc:
                log.warning("agent_refused", reason=str(exc), agency=peer.name)
                await abort(context, grpc.StatusCode.PERMISSION_DENIED,
                            f"agent certificate: {exc}", reason="CERTIFICATE_REVOKED")

        try:
            first = await asyncio.wait_for(anext(request_iterator),
                                           self.cfg.hello_timeout_seconds)
        except (TimeoutError, StopAsyncIteration):
            await abort(context, grpc.StatusCode.DEADLINE_EXCEEDED,
                        "the agent must send its hello first, promptly",
                        reason="STEP_TIMED_OUT")
        except BadMessage as exc:
            await abort_invalid(context, str(exc), reason="MALFORMED_MESSAGE",
                                field_path="hello")
        if first.WhichOneof("message") != "hello":
            await abort(context, grpc.StatusCode.FAILED_PRECONDITION,
                        "the first message on the stream must be a hello",
                        reason="OUT_OF_ORDER")
        session = AgentSession(peer.name, first.hello,
                               liveness=self._liveness(peer.name, first.hello),
                               certificate=certificate)
        if self.exchange is not None:
            outbox = session.outbox
            session.witnessing = StreamWitnessing(
                self.exchange, peer.name,
                lambda m: outbox.put_nowait(agent_pb2.ConnectResponse(audit_head=m)),
                lambda m: outbox.put_nowait(agent_pb2.ConnectResponse(audit_witness=m)))
        self.registry.attach(session)
        metrics.AGENTS_ONLINE.set(self.registry.online)
        reader = asyncio.create_task(self._read(session, request_iterator))
        watch = asyncio.create_task(self._watch(session))
        exchanging: asyncio.Task[None] | None = None
        try:
            yield agent_pb2.ConnectResponse(welcome=agent_pb2.BrokerWelcome(
                broker_id=self.cfg.broker_id, agency_id=peer.name,
                heartbeat_interval_seconds=int(self.cfg.heartbeat_seconds),
                accepts_batches=True))
            if session.witnessing is not None:
                exchanging = asyncio.create_task(session.witnessing.run())
            while True:
                message = await session.outbox.get()
                if message is None:
                    break
                yield message
        finally:
            reader.cancel()
            watch.cancel()
            if exchanging is not None:
                exchanging.cancel()
            self.registry.detach(session)
            if self.registry.get(session.agency) is None:
                metrics.AGENT_UNRESPONSIVE.labels(session.agency).set(0)
            metrics.AGENTS_ONLINE.set(self.registry.online)
        if session.refused:
            await abort(context, grpc.StatusCode.PERMISSION_DENIED,
                        f"agent certificate: {session.refused}", reason="CERTIFICATE_REVOKED")
        if session.protocol_error:
            await abort_invalid(context, session.protocol_error, reason="MALFORMED_MESSAGE",
                                field_path="message")

    def _liveness(self, agency: str, hello: agent_pb2.AgentHello) -> Liveness:
        interval = (hello.heartbeat_interval_ms / 1000 if hello.heartbeat_interval_ms
                    else self.cfg.heartbeat_seconds)

        def changed(state: Unresponsive | None) -> None:
            metrics.AGENT_UNRESPONSIVE.labels(agency).set(0 if state is None else 1)
            metrics.LIVENESS_CHANGES.labels(agency, state.kind if state else "answering").inc()
            if state is None:
                log.info("agent_answering_again", agency=agency)
            else:
                log.warning("agent_unresponsive", agency=agency, kind=state.kind,
                            since=state.since.isoformat(), reason=state.reason)

        return Liveness(config=self.cfg.liveness, heartbeat_seconds=interval, on_change=changed)

    async def _watch(self, session: AgentSession) -> None:
        """Notice a silent agent between lookups too (for the log, metrics and status)."""
        while not session.closed:
            await asyncio.sleep(session.liveness.heartbeat_seconds)
            session.liveness.state()

    async def _read(self, session: AgentSession,
                    request_iterator: AsyncIterator[agent_pb2.ConnectRequest]) -> None:
        try:
            async for message in request_iterator:
                kind = message.WhichOneof("message")
                if kind == "heartbeat":
                    session.liveness.heard()
                    session.update(message.heartbeat)
                    session.outbox.put_nowait(agent_pb2.ConnectResponse(
                        heartbeat=agent_pb2.Heartbeat(
                            sent_at=timestamp(dt.datetime.now(dt.UTC)))))
                elif kind in ("answer", "answers"):
                    session.last_seen = dt.datetime.now(dt.UTC)
                    session.liveness.heard()
                    for answer in (message.answers.answers if kind == "answers"
                                   else (message.answer,)):
                        delivered = session.deliver(answer)
                        # an answer to a query it was sent (late ones too): it answers again
                        if session.liveness.answer_counts(answer.query_id,
                                                          delivered=delivered):
                            session.liveness.answered()
                        if not delivered:
                            log.info("late_answer_dropped", agency=session.agency,
                                     query_id=answer.query_id)
                elif kind in ("audit_head", "audit_witness") and session.witnessing:
                    w = session.witnessing
                    task = asyncio.create_task(w.on_head(message.audit_head)
                                               if kind == "audit_head"
                                               else w.on_witness(message.audit_witness))
                    session.tasks.add(task)
                    task.add_done_callback(session.tasks.discard)
                elif kind == "hello":
                    log.warning("agent_protocol_error", agency=session.agency,
                                reason="second hello")
                    break
        except asyncio.CancelledError:
            raise
        except BadMessage as exc:
            log.warning("agent_protocol_error", agency=session.agency, reason=str(exc))
            session.protocol_error = str(exc)
        except grpc.aio.AioRpcError as exc:
            log.info("agent_stream_ended", agency=session.agency, code=exc.code().name)
        except Exception as exc:
            log.warning("agent_stream_ended", agency=session.agency, error=type(exc).__name__)
        finally:
            session.close()
