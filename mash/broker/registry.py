"""The live agent streams: who is online, and the queries each has in flight."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from mash.answers import timestamp
from mash.audit.exchange import StreamWitnessing
from mash.broker.batches import HeldQueries
from mash.broker.liveness import Liveness, LivenessConfig
from mash.identity.revocation import RevocationError, RevocationList
from mash.logs import get_logger
from mash.v1 import agent_pb2, answer_pb2, lookup_pb2

log = get_logger(__name__)


class AgentGone(Exception):
    """The agent's stream closed while a query was in flight."""


@dataclass
class AgentSession:
    agency: str
    hello: agent_pb2.AgentHello
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    connected_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    last_seen: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    outbox: asyncio.Queue[agent_pb2.ConnectResponse | None] = field(default_factory=asyncio.Queue)
    pending: dict[str, asyncio.Future[agent_pb2.QueryAnswer]] = field(default_factory=dict)
    closed: bool = False
    protocol_error: str = ""
    ready: bool = False
    record_count: int = 0
    policy_revision: str = ""
    data_as_at: object = None  # Timestamp | None
    data_status: answer_pb2.DataStatus | None = None  # as the agent last reported it
    held: HeldQueries = field(init=False)  # plain queries, for an agent that takes batches
    # whether it still answers (the broker's settings are given by AgentService)
    liveness: Liveness = field(default_factory=lambda: Liveness(
        config=LivenessConfig(), heartbeat_seconds=5.0))
    witnessing: StreamWitnessing | None = None  # audit heads on this stream
    certificate: bytes = b""  # the agent's certificate (PEM), checked again when the CRL changes
    refused: str = ""  # why the broker closed this stream (a revoked certificate, say)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)  # witnessing work in flight

    def __post_init__(self) -> None:
        self.held = HeldQueries(self.outbox.put_nowait)
        self.update(self.hello)

    def update(self, status: agent_pb2.AgentHello | agent_pb2.Heartbeat) -> None:
        self.last_seen = dt.datetime.now(dt.UTC)
        self.ready = status.ready
        self.record_count = status.record_count
        self.policy_revision = status.policy_revision
        if status.HasField("data_as_at"):
            self.data_as_at = status.data_as_at
        self.data_status = status.data_status if status.HasField("data_status") else None

    def ask(self, query: agent_pb2.Query) -> asyncio.Future[agent_pb2.QueryAnswer]:
        if self.closed:
            raise AgentGone(self.agency)
        future: asyncio.Future[agent_pb2.QueryAnswer] = (
            asyncio.get_running_loop().create_future())
        self.pending[query.query_id] = future
        if self.hello.accepts_batches and not query.HasField("blind"):  # blind: never held
            self.held.add(query)
        else:
            self.outbox.put_nowait(agent_pb2.ConnectResponse(query=query))
        return future

    def forget(self, query_id: str) -> None:
        """Nobody waits for this query any more (answered, timed out or cancelled)."""
        self.pending.pop(query_id, None)
        self.held.settled(query_id)

    def deliver(self, answer: agent_pb2.QueryAnswer) -> bool:
        """Resolve the waiting lookup. False when nobody waits (late or unknown query id)."""
        future = self.pending.pop(answer.query_id, None)
        self.held.settled(answer.query_id)
        if future is None or future.done():
            return False
        future.set_result(answer)
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.held.close()
        for future in self.pending.values():
            if not future.done():
                future.set_exception(AgentGone(self.agency))
        self.pending.clear()
        self.outbox.put_nowait(None)


class Registry:
    """At most one live session per agency: a new connection replaces the old one."""

    def __init__(self, agencies: Callable[[], dict[str, str]]) -> None:
        self.agencies = agencies  # the agencies registered now: id -> display name
        self.revocation: RevocationList | None = None  # who may hold a stream or call at all
        self._sessions: dict[str, AgentSession] = {}
        self._last_seen: dict[str, dt.datetime] = {}

    def attach(self, session: AgentSession) -> None:
        previous = self._sessions.get(session.agency)
        self._sessions[session.agency] = session
        if previous is not None:
            log.warning("agent_replaced", agency=session.agency, old=previous.session_id,
                        new=session.session_id)
            previous.close()
        log.info("agent_online", agency=session.agency, session=session.session_id,
                 version=session.hello.agent_version, ready=session.ready)

    def detach(self, session: AgentSession) -> None:
        session.close()
        self._last_seen[session.agency] = session.last_seen
        if self._sessions.get(session.agency) is session:
            del self._sessions[session.agency]
            log.info("agent_offline", agency=session.agency, session=session.session_id)

    def get(self, agency: str) -> AgentSession | None:
        session = self._sessions.get(agency)
        return None if session is None or session.closed else session

    def last_seen(self, agency: str) -> dt.datetime | None:
        return self._last_seen.get(agency)

    @property
    def online(self) -> int:
        return len(self._sessions)

    def sessions(self) -> list[AgentSession]:
        return [s for s in self._sessions.values() if not s.closed]

    def close_revoked(self) -> int:
        """Close every stream whose certificate the revocation list no longer passes."""
        closed = 0
        for session in self.sessions():
            if self.revocation is None:
                break
            try:
                self.revocation.check(session.certificate)
            except RevocationError as exc:
                log.warning("agent_stream_revoked", agency=session.agency,
                            session=session.session_id, reason=str(exc))
                session.refused = str(exc)
                session.close()
                closed += 1
        return closed

    def close_unregistered(self) -> int:
        """Close the stream of every agency no longer registered (a new bundle withdrew it)."""
        registered = self.agencies()
        closed = 0
        for session in self.sessions():
            if session.agency not in registered:
                log.warning("agent_stream_withdrawn", agency=session.agency,
                            session=session.session_id, reason="agency no longer registered")
                session.refused = "the agency is no longer registered with this broker"
                session.close()
                closed += 1
        return closed

    def close_all(self) -> None:
        for session in list(self._sessions.values()):
            self.detach(session)

    def statuses(self) -> list[lookup_pb2.AgentStatus]:
        out = []
        for agency, name in sorted(self.agencies().items()):
            status = lookup_pb2.AgentStatus(agency_id=agency, agency_name=name)
            session = self.get(agency)
            if session is not None:
                status.online = True
                status.ready = session.ready
                status.connected_at.CopyFrom(timestamp(session.connected_at))
                status.last_seen.CopyFrom(timestamp(session.last_seen))
                status.policy_revision = session.policy_revision
                status.agent_version = session.hello.agent_version
                status.record_count = session.record_count
                if session.data_as_at is not None:
                    status.data_as_at.CopyFrom(session.data_as_at)  # type: ignore[arg-type]
                if session.data_status is not None:
                    status.data_status.CopyFrom(session.data_status)
                unresponsive = session.liveness.state()
                if unresponsive is not None:
                    status.unresponsive = True
                    status.unresponsive_since.CopyFrom(timestamp(unresponsive.since))
                    status.unresponsive_reason = unresponsive.reason
            elif (seen := self._last_seen.get(agency)) is not None:
                status.last_seen.CopyFrom(timestamp(seen))
            out.append(status)
        return out
