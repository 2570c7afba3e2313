"""The agent stream's batches, seen from an agent driven by hand on the wire: while a batch
of plain queries is out, the broker holds the next ones and sends them together, and the
answers may come back together; an agent that predates batches gets one query a message."""

from __future__ import annotations

import asyncio

import grpc

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


async def test_queries_wait_while_a_batch_is_out_and_then_go_together(running: Running) -> None:
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
    """Held queries go after HOLD_SECONDS even when the batch out is never answered, rather
    than waiting for it to time out."""
    monkeypatch.setattr(broker_batches, "HOLD_SECONDS", 0.3)
    channel, call, _ = await _hand_driven_agent(running, batches=True)
    analyst = running.analyst()
    try:
        first = asyncio.create_task(analyst.lookup(lookup_request(case="STUCK-1")))
        _, (stuck,) = await _next(call)  # never answered
        later = [asyncio.create_task(analyst.lookup(lookup_request(case=f"STUCK-{n}")))
                 for n in (2, 3)]
        kind, held = await _next(call, within=2)  # the lookups' deadline is far later
        assert kind == "queries" and len(held) == 2
        await call.write(agent_pb2.ConnectRequest(answers=agent_pb2.QueryAnswers(
            answers=[_answer(q) for q in held])))
        responses = await asyncio.wait_for(asyncio.gather(*later), 15)
        assert [_housing(r).state for r in responses] == [R.ANSWER_STATE_NOT_KNOWN] * 2
        await call.write(agent_pb2.ConnectRequest(answer=_answer(stuck)))
        assert _housing(await asyncio.wait_for(first, 15)).state == R.ANSWER_STATE_NOT_KNOWN
    finally:
        await channel.close()


async def test_an_agent_that_fails_to_answer_a_query_still_answers_it_not_checked(
        running: Running) -> None:
    """A query whose answering raises gets NOT_CHECKED, so the broker never waits for it
    (and holds nothing back behind it)."""
    link = running.agents["police"].link
    respond = link.respond

    async def broken(query, queries):
        if query.context.case_reference == "BROKEN":
            raise RuntimeError("a bug while answering")
        return await respond(query, queries)

    link.respond = broken
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
