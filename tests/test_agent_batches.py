"""The agent stream's batches, seen from an agent driven by hand on the wire: while a batch
of plain queries is out, the broker holds the next ones and sends them together, and the
answers may come back together; an agent that predates batches gets one query a message."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest

from mash.agent.link import _batched
from mash.batching import MAX_BATCH, batches
from mash.broker import batches as broker_batches
from mash.grpc_options import channel_options
from mash.v1 import agent_pb2, agent_pb2_grpc, answer_pb2
from tests.helpers import Running, client_tls, lookup_request, wait_until

R = answer_pb2


async def _hand_driven_agent(running: Running, batches: bool):
    """The housing agent (no real one runs in these tests), saying whether it takes batches."""
    tls = client_tls(running.fed, "housing-agent")
    channel = grpc.aio.secure_channel(f"127.0.0.1:{running.fed.broker_port}",
                                      tls.channel_credentials(),
                                      options=channel_options("localhost"))
    call = agent_pb2_grpc.AgentServiceStub(channel).Connect()
    await call.write(agent_pb2.ConnectRequest(hello=agent_pb2.AgentHello(
        agent_version="test", ready=True, accepts_batches=batches)))
    welcome = await asyncio.wait_for(call.read(), 10)
    return channel, call, welcome.welcome


async def _next(call, within: float = 10) -> tuple[str, list[agent_pb2.Query]]:
    """The next queries to arrive, and whether they came as one `query` or as `queries`."""
    while True:
        message = await asyncio.wait_for(call.read(), within)
        kind = message.WhichOneof("message")
        if kind == "query":
            return kind, [message.query]
        if kind == "queries":
            return kind, list(message.queries.queries)


def _answer(query: agent_pb2.Query) -> agent_pb2.QueryAnswer:
    answer = R.AgencyAnswer(agency_id="housing", state=R.ANSWER_STATE_NOT_KNOWN)
    answer.data_as_at.GetCurrentTime()
    return agent_pb2.QueryAnswer(query_id=query.query_id, answer=answer)


def _housing(response) -> R.AgencyAnswer:
    return next(a for a in response.answers if a.agency_id == "housing")


async def test_queries_wait_while_a_batch_is_out_and_then_go_together(
        running: Running, monkeypatch) -> None:
    monkeypatch.setattr(broker_batches, "HOLD_SECONDS", 30)  # only the answer releases them
    channel, call, welcome = await _hand_driven_agent(running, batches=True)
    assert welcome.accepts_batches
    analyst = running.analyst()

    def ask(case: str) -> asyncio.Task:
        return asyncio.create_task(analyst.lookup(lookup_request(case=case)))

    try:
        first = ask("BATCH-1")
        kind, out = await _next(call)
        assert kind == "query" and [q.context.case_reference for q in out] == ["BATCH-1"]
        # while that one is out, the next two are held at the broker ...
        later = [ask("BATCH-2"), ask("BATCH-3")]
        session = running.broker.registry.get("housing")
        await wait_until(lambda: len(session.held.waiting) == 2)
        await call.write(agent_pb2.ConnectRequest(answer=_answer(out[0])))
        # ... and sent together once it is answered; their answers go back together
        kind, held = await _next(call)
        assert kind == "queries"
        assert sorted(q.context.case_reference for q in held) == ["BATCH-2", "BATCH-3"]
        await call.write(agent_pb2.ConnectRequest(answers=agent_pb2.QueryAnswers(
            answers=[_answer(q) for q in held])))
        responses = await asyncio.wait_for(asyncio.gather(first, *later), 15)
    finally:
        await channel.close()
    assert [_housing(r).state for r in responses] == [R.ANSWER_STATE_NOT_KNOWN] * 3
    assert {r.lookup_id for r in responses} == {q.lookup_id for q in [*out, *held]}


async def test_an_agent_that_leaves_a_query_unanswered_holds_the_others_back_only_briefly(
        running: Running, monkeypatch) -> None:
    """Held queries go after HOLD_SECONDS even when the batch out is never answered, long
    before it would time out (the lookups' deadline is 5 s away)."""
    monkeypatch.setattr(broker_batches, "HOLD_SECONDS", 0.3)
    channel, call, _ = await _hand_driven_agent(running, batches=True)
    analyst = running.analyst()
    try:
        first = asyncio.create_task(analyst.lookup(lookup_request(case="STUCK-1")))
        _, (stuck,) = await _next(call)  # never answered, until the end
        later = [asyncio.create_task(analyst.lookup(lookup_request(case=f"STUCK-{n}")))
                 for n in (2, 3)]
        held: list[agent_pb2.Query] = []
        while len(held) < 2:  # together, or one by one if the timer fell between them
            held += (await _next(call, within=2))[1]
        assert sorted(q.context.case_reference for q in held) == ["STUCK-2", "STUCK-3"]
        await call.write(agent_pb2.ConnectRequest(answers=agent_pb2.QueryAnswers(
            answers=[_answer(q) for q in held])))
        responses = await asyncio.wait_for(asyncio.gather(*later), 15)
        assert [_housing(r).state for r in responses] == [R.ANSWER_STATE_NOT_KNOWN] * 2
        await call.write(agent_pb2.ConnectRequest(answer=_answer(stuck)))
        assert _housing(await asyncio.wait_for(first, 15)).state == R.ANSWER_STATE_NOT_KNOWN
    finally:
        await channel.close()


class ManualClock:
    """A clock the test moves by hand: timers fire in `advance`, never on their own."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[tuple[float, int, Callable[[], None], list[bool]]] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + 1_700_000_000.0

    def call_later(self, delay: float, callback: Callable[[], None]) -> broker_batches.Timer:
        cancelled = [False]
        self.timers.append((self.now + delay, len(self.timers), callback, cancelled))

        class Handle:
            def cancel(self) -> None:
                cancelled[0] = True

        return Handle()

    def advance(self, seconds: float) -> None:
        until = self.now + seconds
        while due := sorted(t for t in self.timers if not t[3][0] and t[0] <= until):
            when, _, callback, cancelled = due[0]
            self.now = when
            cancelled[0] = True  # fired
            callback()
        self.now = until


def _query(query_id: str, seconds_left: float = 60, clock: ManualClock | None = None
           ) -> agent_pb2.Query:
    query = agent_pb2.Query(query_id=query_id)
    wall = clock.wall() if clock else time.time()
    query.deadline.FromNanoseconds(int((wall + seconds_left) * 1e9))
    return query


def _sent_ids(sent: list[agent_pb2.ConnectResponse]) -> list[list[str]]:
    return [[q.query_id for q in (m.queries.queries if m.HasField("queries") else [m.query])]
            for m in sent]


def _held(monkeypatch, hold: float) -> tuple[broker_batches.HeldQueries, ManualClock,
                                             list[agent_pb2.ConnectResponse]]:
    monkeypatch.setattr(broker_batches, "HOLD_SECONDS", hold)
    sent: list[agent_pb2.ConnectResponse] = []
    clock = ManualClock()
    return broker_batches.HeldQueries(sent.append, clock=clock), clock, sent


def test_held_queries_go_when_the_last_batch_is_settled_and_never_once_forgotten(
        monkeypatch) -> None:
    held, clock, sent = _held(monkeypatch, 30)
    held.add(_query("a", clock=clock))  # nothing out: at once
    for name in "bcd":
        held.add(_query(name, clock=clock))
    held.settled("c")  # its lookup timed out while it was held: never sent
    assert _sent_ids(sent) == [["a"]]
    held.settled("a")
    assert _sent_ids(sent) == [["a"], ["b", "d"]]
    held.add(_query("e", clock=clock))
    held.close()  # the agent went away: nothing more is sent, and no timer is left behind
    held.settled("b")
    held.settled("d")
    clock.advance(60)
    assert _sent_ids(sent) == [["a"], ["b", "d"]] and not held.waiting


def test_a_stuck_query_holds_the_others_only_until_the_hold_or_half_their_deadline(
        monkeypatch) -> None:
    held, clock, sent = _held(monkeypatch, 0.2)
    held.add(_query("stuck", clock=clock))
    held.add(_query("b", clock=clock))
    clock.advance(0.1)
    assert _sent_ids(sent) == [["stuck"]]
    clock.advance(0.1)
    assert _sent_ids(sent) == [["stuck"], ["b"]]  # the hold ran out
    held.settled("b")
    held.add(_query("c", clock=clock))  # the last batch is settled: at once, though "stuck" is
    assert _sent_ids(sent) == [["stuck"], ["b"], ["c"]]  # still out
    held, clock, sent = _held(monkeypatch, 30)
    held.add(_query("x", clock=clock))
    held.add(_query("y", seconds_left=0.2, clock=clock))  # half its time left, not the 30 s hold
    clock.advance(0.099)
    assert _sent_ids(sent) == [["x"]]
    clock.advance(0.002)
    assert _sent_ids(sent) == [["x"], ["y"]]
    held.close()


def test_every_held_query_bounds_the_hold_by_its_own_deadline(monkeypatch) -> None:
    """The first held query has time to spare; the second, with 0.4 s left, must not wait
    for the first one's release (1 s after the batch out was sent, past its deadline)."""
    held, clock, sent = _held(monkeypatch, 1.0)
    held.add(_query("out", clock=clock))
    held.add(_query("patient", seconds_left=60, clock=clock))
    assert held.release_at == pytest.approx(clock.now + 1.0)  # the hold
    clock.advance(0.1)
    hurried = _query("hurried", seconds_left=0.4, clock=clock)
    held.add(hurried)
    assert held.release_at == pytest.approx(clock.now + 0.2)  # half its 0.4 s left
    clock.advance(0.199)
    assert _sent_ids(sent) == [["out"]]
    clock.advance(0.002)
    assert _sent_ids(sent) == [["out"], ["patient", "hurried"]]
    assert clock.wall() < hurried.deadline.ToNanoseconds() / 1e9  # before its deadline
    # A later query with more time left never puts the release back.
    held.add(_query("later", seconds_left=0.4, clock=clock))
    release = held.release_at
    held.add(_query("relaxed", seconds_left=60, clock=clock))
    assert held.release_at == release
    # And a held query already past its deadline goes at once, not after the hold.
    held, clock, sent = _held(monkeypatch, 1.0)
    held.add(_query("out", clock=clock))
    held.add(_query("late", seconds_left=-1, clock=clock))
    clock.advance(0)
    assert _sent_ids(sent) == [["out"], ["late"]]


async def test_an_agent_that_fails_to_answer_a_query_still_answers_it_not_checked(
        running: Running) -> None:
    """A query whose answering raises gets NOT_CHECKED, so the broker never waits for it
    (and holds nothing back behind it)."""
    for link in running.agents["police"].link.links:
        receive = link.receive

        async def broken(query, queries, receive=receive):
            if query.context.case_reference == "BROKEN":
                raise RuntimeError("a bug while answering")
            return await receive(query, queries)

        link.receive = broken
    broken_answer = _answer_of(await running.analyst().lookup(lookup_request(case="BROKEN")))
    assert broken_answer.state == R.ANSWER_STATE_NOT_CHECKED and not broken_answer.matches
    assert broken_answer.not_checked_reason == R.NOT_CHECKED_REASON_AGENT_ERROR
    assert "failed while answering" in broken_answer.detail
    fine = _answer_of(await running.analyst().lookup(lookup_request(case="FINE")))
    assert fine.state == R.ANSWER_STATE_KNOWN


def _answer_of(response, agency: str = "police") -> R.AgencyAnswer:
    return next(a for a in response.answers if a.agency_id == agency)


def test_batches_keep_within_the_count_and_the_size_of_a_message() -> None:
    small = [agent_pb2.QueryAnswer(query_id=f"q{n}") for n in range(MAX_BATCH + 1)]
    assert [len(b) for b in batches(small)] == [MAX_BATCH, 1]
    big = [agent_pb2.QueryAnswer(query_id=f"q{n}", answer=R.AgencyAnswer(detail="x" * 400))
           for n in range(5)]
    cut = list(batches(big, max_bytes=1000))
    assert [len(b) for b in cut] == [2, 2, 1]
    assert [a.query_id for b in cut for a in b] == [a.query_id for a in big]
    huge = agent_pb2.QueryAnswer(query_id="huge", answer=R.AgencyAnswer(detail="x" * 5000))
    assert [len(b) for b in batches([huge, *big[:1]], max_bytes=1000)] == [1, 1]


async def test_an_agent_that_predates_batches_gets_one_query_a_message(
        running: Running) -> None:
    channel, call, _ = await _hand_driven_agent(running, batches=False)
    analyst = running.analyst()
    try:
        lookups = [asyncio.create_task(analyst.lookup(lookup_request(case="OLD-1")))]
        arrived = [await _next(call)]
        # nothing is held for it: the next ones come at once, each on its own
        lookups += [asyncio.create_task(analyst.lookup(lookup_request(case=f"OLD-{n}")))
                    for n in (2, 3)]
        arrived += [await _next(call), await _next(call)]
        assert [kind for kind, _ in arrived] == ["query"] * 3
        for _, (query,) in arrived:
            await call.write(agent_pb2.ConnectRequest(answer=_answer(query)))
        responses = await asyncio.wait_for(asyncio.gather(*lookups), 15)
    finally:
        await channel.close()
    assert [_housing(r).state for r in responses] == [R.ANSWER_STATE_NOT_KNOWN] * 3


def test_an_agent_sends_a_run_of_answers_as_one_message_and_keeps_the_order() -> None:
    def answer(query_id: str) -> agent_pb2.ConnectRequest:
        return agent_pb2.ConnectRequest(answer=agent_pb2.QueryAnswer(query_id=query_id))

    beat = agent_pb2.ConnectRequest(heartbeat=agent_pb2.Heartbeat(ready=True))
    out = _batched([answer("a"), answer("b"), beat, answer("c"), None])
    assert [m.WhichOneof("message") if m else None for m in out] == [
        "answers", "heartbeat", "answer", None]
    assert [a.query_id for a in out[0].answers.answers] == ["a", "b"]
    assert out[2].answer.query_id == "c"
