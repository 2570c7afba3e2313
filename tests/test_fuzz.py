"""Fuzzing the broker's inputs: whatever arrives, a clear status or well-formed answers,
never a crash, never an answer in no state, and nothing from the request in the logs."""

from __future__ import annotations

import io
import json
import queue
import string

import grpc
import pytest
import structlog
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from mash.answers import STATE_LABELS, problem
from mash.logs import configure, get_logger
from mash.v1 import (
    agent_pb2,
    agent_pb2_grpc,
    answer_pb2,
    lookup_pb2,
    lookup_pb2_grpc,
    subject_pb2,
)
from tests.helpers import ThreadedFederation, build_federation, lookup_request

pytestmark = pytest.mark.slow
MARK = "Qzv"  # every fuzzed name starts with this, so the log check can find any leak
ACCEPTABLE = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    log = io.StringIO()
    configure("debug", stream=log)
    # housing is registered at the broker (and its agreement routes lookups to it) but no
    # real housing agent runs: the fuzzing tests speak for housing on the wire.
    fed = build_federation(tmp_path_factory.mktemp("fuzz") / "fed",
                           agencies=["police", "health", "education", "housing"],
                           broker_overrides={"rate_limit": {"lookups_per_minute": 100000,
                                                            "burst": 100000}})
    world = ThreadedFederation(fed, ["police", "health", "education"])
    world.log = log
    yield world
    world.close()
    configure("warning")
    structlog.reset_defaults()
    configure("warning")


def text(max_size: int = 60) -> st.SearchStrategy[str]:
    return st.text(alphabet=st.characters(codec="utf-8"), max_size=max_size)


names = st.builds(subject_pb2.PersonName, given=text().map(lambda s: MARK + s),
                  middle=text(), family=text().map(lambda s: MARK + s))
dates = st.builds(subject_pb2.Date, year=st.integers(-10, 100000),
                  month=st.integers(-5, 20), day=st.integers(-5, 40))
identifiers = st.builds(subject_pb2.Identifier, kind=st.integers(0, 9),
                        value=text(30), issuer=text(20))
subjects = st.builds(
    subject_pb2.Subject, name=names, aliases=st.lists(names, max_size=14), date_of_birth=dates,
    sex=st.integers(0, 5), addresses=st.lists(st.builds(
        subject_pb2.Address, lines=st.lists(text(250), max_size=8),
        postcode=st.one_of(text(12), st.sampled_from(["LS9 8AB", "ls98ab", "SW1A 1AA"]))),
        max_size=12),
    identifiers=st.lists(identifiers, max_size=12))
contexts = st.builds(
    subject_pb2.RequestContext,
    purpose=st.one_of(st.just("child_safeguarding"), text(50)),
    stage=st.one_of(st.sampled_from(["triage", "research", "s47"]), text(50)),
    case_reference=st.one_of(st.just("MASH-1"), text(80)),
    justification=st.one_of(st.just("A referral from school about bruising"), text(3000)),
    urgency=st.integers(0, 6))


def check(world, request: lookup_pb2.LookupRequest) -> None:
    stub = lookup_pb2_grpc.LookupServiceStub(world.channel())
    try:
        response = stub.Lookup(request, timeout=20, metadata=(
            ("authorization", f"Bearer {world.fed.token()}"),))
    except grpc.RpcError as exc:
        assert exc.code() in ACCEPTABLE, (exc.code(), exc.details())
        assert exc.details()
        return
    assert response.answers
    for answer in response.answers:
        assert answer.state in STATE_LABELS
        assert problem(answer) is None, (answer.agency_id, problem(answer))


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(subject=subjects, context=contexts)
def test_fuzzed_lookups(world, subject, context) -> None:
    check(world, lookup_pb2.LookupRequest(subject=subject, context=context))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(subject=subjects)
def test_fuzzed_subjects_with_a_valid_context(world, subject) -> None:
    request = lookup_request()
    request.subject.CopyFrom(subject)
    check(world, request)


def test_huge_alias_list_and_oversize_fields(world) -> None:
    request = lookup_request()
    for i in range(5000):
        request.subject.aliases.add(given=f"{MARK}{i}", family="Smith")
    check(world, request)
    request = lookup_request()
    request.subject.name.family = MARK + "x" * 500_000
    check(world, request)


def test_invalid_utf8_and_deep_nesting_are_refused_by_grpc(world) -> None:
    """Bytes no protobuf library would produce: grpc refuses them before our code runs."""
    valid = lookup_request().SerializeToString()
    bad_utf8 = valid + bytes([0x1a, 0x04, 0x0a, 0x02, 0xff, 0xfe])  # context.purpose = 0xfffe
    nested = valid
    for _ in range(200):  # unknown field 15, length-delimited, nested 200 deep
        nested = b"\x7a" + _varint(len(nested)) + nested
    raw = world.channel().unary_unary("/mash.v1.LookupService/Lookup",
                                      request_serializer=None, response_deserializer=None)
    for payload in (bad_utf8, nested, b"\xff" * 64):
        with pytest.raises(grpc.RpcError) as err:
            raw(payload, timeout=10, metadata=(("authorization",
                                               f"Bearer {world.fed.token()}"),))
        assert err.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)
    # and the broker is still answering
    check(world, lookup_request())


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


agency_answers = st.builds(
    lambda state, reason, agency, matches, dated: _answer(state, reason, agency, matches, dated),
    st.integers(-1, 9), st.integers(-1, 15),
    st.one_of(st.just(""), st.just("police"), st.just("housing"), text(20)),
    st.integers(0, 2), st.booleans())
answers = st.builds(agent_pb2.QueryAnswer, query_id=st.one_of(text(40), st.just("")),
                    answer=agency_answers)


def _answer(state: int, reason: int, agency: str, matches: int = 0, dated: bool = False):
    a = answer_pb2.AgencyAnswer(agency_id=agency)
    a.state = state
    a.not_checked_reason = reason
    for _ in range(matches):
        a.matches.add()
    if dated:
        a.data_as_at.GetCurrentTime()
    return a


connect_messages = st.lists(st.one_of(
    st.builds(lambda h: agent_pb2.ConnectRequest(hello=h), st.builds(
        agent_pb2.AgentHello, agent_version=text(300), policy_revision=text(100),
        record_count=st.integers(-(2**63), 2**63 - 1), ready=st.booleans())),
    st.builds(lambda b: agent_pb2.ConnectRequest(heartbeat=b), st.builds(
        agent_pb2.Heartbeat, policy_revision=text(100), ready=st.booleans(),
        record_count=st.integers(-(2**63), 2**63 - 1))),
    st.builds(lambda a: agent_pb2.ConnectRequest(answer=a), answers),
    st.just(agent_pb2.ConnectRequest()),
), max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(messages=connect_messages)
def test_fuzzed_agent_streams_never_hurt_the_broker(world, messages) -> None:
    """A misbehaving housing agent (registered, genuine certificate) sends anything at all."""
    stub = agent_pb2_grpc.AgentServiceStub(world.channel("housing-agent"))
    try:
        for _ in stub.Connect(iter(messages), timeout=3):
            pass
    except grpc.RpcError as exc:
        assert exc.code() not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), \
            exc.details()
    # the real agents still answer, and nothing malformed is ever forwarded
    check(world, lookup_request())


# Answers the broker should believe, so that the fuzzing also tests acceptance.
valid_answers = st.builds(
    lambda state, agency: _answer(state, 0, agency, 0, True),
    st.sampled_from([answer_pb2.ANSWER_STATE_NOT_KNOWN, answer_pb2.ANSWER_STATE_WITHHELD]),
    st.sampled_from(["", "housing"]))


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(answer=st.one_of(agency_answers, valid_answers))
@example(answer=_answer(answer_pb2.ANSWER_STATE_NOT_KNOWN, 0, "housing", 0, True))
@example(answer=_answer(answer_pb2.ANSWER_STATE_NOT_KNOWN, 0, "police", 0, True))
@example(answer=_answer(answer_pb2.ANSWER_STATE_KNOWN, 0, "housing", 0, True))
def test_fuzzed_answers_to_a_pending_query(world, answer) -> None:
    """The housing stream answers a real query the broker is waiting on, with anything: the
    analyst sees a well-formed answer, the fuzzed one only if it was valid, housing's own."""
    outbox: queue.Queue[agent_pb2.ConnectRequest | None] = queue.Queue()
    outbox.put(agent_pb2.ConnectRequest(hello=agent_pb2.AgentHello(
        agent_version="fuzz", ready=True, record_count=10)))

    def requests():
        while (message := outbox.get()) is not None:
            yield message

    stream = agent_pb2_grpc.AgentServiceStub(world.channel("housing-agent")).Connect(
        requests(), timeout=30)
    try:
        assert next(stream).WhichOneof("message") == "welcome"
        lookup = lookup_pb2_grpc.LookupServiceStub(world.channel()).Lookup.future(
            lookup_request(), timeout=20,
            metadata=(("authorization", f"Bearer {world.fed.token()}"),))
        query = next(m.query for m in stream if m.WhichOneof("message") == "query")
        outbox.put(agent_pb2.ConnectRequest(answer=agent_pb2.QueryAnswer(
            query_id=query.query_id, answer=answer)))
        response = lookup.result(timeout=20)
    finally:
        outbox.put(None)
        stream.cancel()
    by_agency = {a.agency_id: a for a in response.answers}
    assert len(by_agency) == len(response.answers)  # nobody answers twice
    housing = by_agency["housing"]
    assert problem(housing) is None, problem(housing)
    valid = problem(answer) is None and answer.agency_id in ("", "housing")
    event(f"valid={valid} state={housing.state}")
    if valid:  # the positive control: a valid answer to a pending query is believed
        assert housing.state == answer.state
    else:
        assert housing.state == answer_pb2.ANSWER_STATE_NOT_CHECKED, (answer, housing)
    assert by_agency["police"].state != answer_pb2.ANSWER_STATE_UNSPECIFIED


def test_no_fuzzed_value_reached_the_logs(world) -> None:
    # Traffic of its own, so that the test means something when it runs alone: lookups with
    # the mark in the subject and the justification, one refused, one answered. (The case
    # reference is logged on purpose: it is a reference, and RequestContext says to keep
    # identifiers out of it.)
    refused = lookup_request(name=f"{MARK}Refused {MARK}Name")
    refused.context.purpose = MARK + "no such purpose"
    answered = lookup_request(name=f"{MARK}Answered {MARK}Name",
                              reason=MARK + " a reason long enough to be accepted")
    for request in (refused, answered):
        check(world, request)
    # Positive control: the capture sees what is logged, and the search would find the mark.
    get_logger("tests.fuzz").warning("log_capture_check", sample=MARK[::-1])
    lines = world.log.getvalue().splitlines()
    assert any("log_capture_check" in line and MARK[::-1] in line for line in lines)
    assert any('"lookup' in line for line in lines), "the broker logged no lookup"
    for line in lines:
        event = json.loads(line)
        assert MARK not in line, event
    assert all(c in string.printable for c in "".join(lines[:5]))
