"""Blind lookups through a real broker and real agents (mTLS, Rego, SQLite audit).

A recording broker keeps every byte it receives and sends; the tests prove that neither the
subject's identifiers nor any answer's contents pass through it in the clear, that agencies
without a candidate never receive the subject, and that the analyst's side rejects tampered,
swapped, replayed and forged answers.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest

import mash.agent.blind as agent_blind
import mash.blind.session as blind_session
import mash.broker.server as broker_server
from mash.answers import STATE_LABELS
from mash.blind import answers as signed_answers
from mash.blind.keys import load_sealing_key
from mash.blind.seal import VERSION_HPKE, Box, SealError, open_box, seal_legacy
from mash.blind.session import BlindLookupError, BlindSession
from mash.client import BrokerClient, ClientConfig, identifier
from mash.demo import data, federation
from mash.v1 import agent_pb2, answer_pb2, blind_pb2, lookup_pb2, lookup_pb2_grpc
from tests.helpers import ThreadedFederation, build_federation, lookup_request

R = answer_pb2
AGENCIES = ["police", "health", "csc", "education"]


class Recorder:
    """Every message the broker decodes or encodes, as raw bytes, by method."""

    def __init__(self) -> None:
        self.wire: list[tuple[str, str, bytes]] = []
        self._lock = threading.Lock()

    def _keep(self, direction: str, method: str, raw: bytes) -> None:
        with self._lock:
            self.wire.append((direction, method, raw))

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = broker_server.register
        recorder = self

        class Tap:
            def __init__(self, server: grpc.aio.Server) -> None:
                self.server = server

            def add_generic_rpc_handlers(self, handlers: tuple[object, ...]) -> None:
                for handler in handlers:
                    # grpc's DictionaryGenericHandler keeps its handlers in _method_handlers.
                    table = handler._method_handlers  # type: ignore[attr-defined]
                    for method, mh in list(table.items()):
                        table[method] = recorder._wrap(method, mh)
                self.server.add_generic_rpc_handlers(handlers)

        monkeypatch.setattr(broker_server, "register",
                            lambda server, servicer, service: original(Tap(server), servicer,
                                                                       service))

    def _wrap(self, method: str, mh: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        encode = mh.response_serializer

        def inbound(raw: bytes) -> bytes:
            self._keep("in", method, raw)
            return raw

        def outbound(message: object) -> bytes:
            raw = encode(message)
            self._keep("out", method, raw)
            return raw

        return mh._replace(request_deserializer=inbound, response_serializer=outbound)

    def clear(self) -> None:
        with self._lock:
            self.wire.clear()

    def seen(self) -> bytes:
        with self._lock:
            return b"\n".join(raw for _, _, raw in self.wire)

    def queries_to(self) -> Iterator[agent_pb2.Query]:
        with self._lock:
            wire = list(self.wire)
        for direction, method, raw in wire:
            if direction == "out" and method.endswith("/Connect"):
                message = agent_pb2.ConnectResponse.FromString(raw)
                if message.WhichOneof("message") == "query":
                    yield message.query


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadedFederation,
                                                                      Recorder]]:
    monkeypatch = pytest.MonkeyPatch()
    recorder = Recorder()
    recorder.install(monkeypatch)
    fed = build_federation(tmp_path_factory.mktemp("blind") / "fed")
    threaded = ThreadedFederation(fed, AGENCIES)
    try:
        yield threaded, recorder
    finally:
        threaded.close()
        monkeypatch.undo()


def _client(fed: federation.Federation) -> BrokerClient:
    return BrokerClient(ClientConfig.load(fed.blind_client_config))


def _states(response: lookup_pb2.LookupResponse) -> dict[str, str]:
    return {a.agency_id: STATE_LABELS.get(a.state, "?") for a in response.answers}


CAST = {
    "leah": dict(name="Leah Thompson", dob="2014-05-17", postcodes=("LS9 8AB",)),
    "ruby": dict(name="Ruby Clarke", dob="2017-02-03", postcodes=("WF1 3LP",)),
    "tyler_nickname": dict(name="Ty Mason", dob="2009-11-02", postcodes=("BD5 7HJ",)),
    "stranger": dict(name="Zebedee Quinlan-Farthing", dob="2013-06-14",
                     postcodes=("YO1 7HH",)),
}


@pytest.mark.parametrize("who", sorted(CAST))
def test_blind_answers_match_plain_answers(world: tuple[ThreadedFederation, Recorder],
                                           who: str) -> None:
    threaded, _ = world
    request = lookup_request(**CAST[who])
    with _client(threaded.fed) as client:
        plain = client.lookup(request, blind=False)
        blind = client.blind_lookup(request)
    assert _states(blind.response) == _states(plain)
    for p, b in zip(plain.answers, blind.response.answers, strict=True):
        assert [m.confidence for m in p.matches] == [m.confidence for m in b.matches]
        assert ([(f.name, f.value, f.transform) for m in p.matches for f in m.released]
                == [(f.name, f.value, f.transform) for m in b.matches for f in m.released])
    # Every answer the analyst believes carries a verified signature, except NOT_CHECKED.
    signed = {s.agency_id for s in blind.evidence}
    for answer in blind.response.answers:
        if answer.state != R.ANSWER_STATE_NOT_CHECKED:
            assert answer.agency_id in signed


def test_known_and_not_known_both_present(world: tuple[ThreadedFederation, Recorder]) -> None:
    threaded, _ = world
    with _client(threaded.fed) as client:
        states = _states(client.lookup(lookup_request(**CAST["ruby"])))
    assert states["health"] == "WITHHELD"
    assert states["police"] == "NOT_KNOWN"
    assert states["probation"] == "NOT_CHECKED"  # no agreement: the broker says so, unsigned


def _needles(subject: dict[str, object], plain: lookup_pb2.LookupResponse) -> list[bytes]:
    person = next(p for p in data.cast().values()
                  if f"{p.given} {p.family}" == subject["name"])
    needles = [person.given.encode(), person.family.encode(), person.nhs_number.encode(),
               person.postcode.encode(), person.postcode.replace(" ", "").encode(),
               person.date_of_birth.isoformat().encode(),
               person.date_of_birth.strftime("%d/%m/%Y").encode()]
    needles += [f.value.encode() for a in plain.answers for m in a.matches for f in m.released
                if len(f.value) >= 4]
    return needles


def test_recording_broker_sees_no_identifiers_and_no_answers(
        world: tuple[ThreadedFederation, Recorder]) -> None:
    threaded, recorder = world
    subject = CAST["leah"]
    request = lookup_request(**subject, identifiers=[
        identifier("nhs_number", data.cast()["leah"].nhs_number)])
    with _client(threaded.fed) as client:
        recorder.clear()
        plain = client.lookup(request, blind=False)
        plain_wire = recorder.seen()
        recorder.clear()
        blind = client.blind_lookup(request)
        blind_wire = recorder.seen()
    assert _states(blind.response)["police"] == "KNOWN"
    needles = _needles(subject, plain)
    assert len(needles) > 8
    # The recorder works: a plain lookup shows the broker the subject and the answers ...
    assert [n for n in needles if n in plain_wire]
    assert b"Thompson" in plain_wire and data.cast()["leah"].nhs_number.encode() in plain_wire
    # ... and a blind one shows it none of them, in any message in either direction.
    assert [n for n in needles if n in blind_wire] == []
    assert blind_wire  # it did relay the lookup


def _round_two_boxes(recorder: Recorder) -> dict[str, agent_pb2.Query]:
    out = {}
    for query in recorder.queries_to():
        if query.round == 2:
            out[query.sealed_subject.key_id] = query
    return out


def test_agencies_without_a_candidate_never_receive_the_subject(
        world: tuple[ThreadedFederation, Recorder]) -> None:
    threaded, recorder = world
    blind_keys = threaded.fed.blind
    assert blind_keys is not None
    with _client(threaded.fed) as client:
        recorder.clear()
        result = client.blind_lookup(lookup_request(**CAST["ruby"]))
    states = _states(result.response)
    queries = list(recorder.queries_to())
    second = [q for q in queries if q.round == 2]
    # Uniform second round: every agency that answered round one gets a box of one size.
    assert len(second) == 4
    assert len({len(q.sealed_subject.ciphertext) for q in second}) == 1
    assert {q.sealed_subject.version for q in second} == {VERSION_HPKE}  # RFC 9180 HPKE
    digest = signed_answers.request_hash(second[0].blind)
    opened: dict[str, blind_pb2.SubjectEnvelope] = {}
    for agency in AGENCIES:
        key = load_sealing_key(blind_keys.agencies[agency].sealing)
        for q in second:
            try:
                plain = open_box(key, Box.from_message(q.sealed_subject),
                                 signed_answers.subject_aad(digest, agency),
                                 signed_answers.SUBJECT_LABEL)
            except SealError:
                continue  # sealed to another agency: it must not open with this key
            opened[agency] = blind_pb2.SubjectEnvelope.FromString(plain)
    assert set(opened) == set(AGENCIES)  # each box opens for exactly its own agency
    assert opened["health"].HasField("subject")
    assert opened["health"].subject.name.family == "Clarke"
    for agency in ("police", "csc", "education"):
        assert states[agency] == "NOT_KNOWN"
        assert not opened[agency].HasField("subject")
    # Round one carried tokens only.
    for q in queries:
        if q.round == 1:
            assert not q.HasField("subject") and not q.HasField("sealed_subject")


class ManualLookup:
    """Drive BlindLookup by hand, so a test can stand between the broker and the analyst."""

    def __init__(self, threaded: ThreadedFederation) -> None:
        self.fed = threaded.fed
        self.channel = threaded.channel()
        self.stub = lookup_pb2_grpc.LookupServiceStub(self.channel)
        cfg = ClientConfig.load(self.fed.blind_client_config)
        assert cfg.blind is not None
        self.blind = cfg.blind
        self.token = cfg.token

    def session(self, request: lookup_pb2.LookupRequest) -> BlindSession:
        return BlindSession(self.blind, self.blind.directory.load(), request)

    def open(self, session: BlindSession) -> tuple[
            Any, queue.Queue[blind_pb2.BlindLookupRequest | None]]:
        """Start the stream with round one; the caller writes the rest to the queue."""
        outbox: queue.Queue[blind_pb2.BlindLookupRequest | None] = queue.Queue()
        outbox.put(session.first())

        def requests() -> Iterator[blind_pb2.BlindLookupRequest]:
            while (item := outbox.get()) is not None:
                yield item

        call = self.stub.BlindLookup(requests(), timeout=15,
                                     metadata=(("authorization", f"Bearer {self.token}"),))
        return call, outbox

    def run(self, session: BlindSession, tamper_one=None, tamper_two=None,
            ) -> lookup_pb2.LookupResponse:
        call, outbox = self.open(session)
        try:
            one = next(call).round_one
            if tamper_one:
                tamper_one(one)
            outbox.put(session.second(one))
            two = next(call).round_two
            if tamper_two:
                tamper_two(two)
            return session.result(two)
        finally:
            outbox.put(None)
            call.cancel()

    def rounds(self, request: lookup_pb2.LookupRequest) -> tuple[BlindSession,
                                                              blind_pb2.BlindRound,
                                                              blind_pb2.BlindRound]:
        kept: dict[str, blind_pb2.BlindRound] = {}
        session = self.session(request)

        def keep(name: str):
            def inner(r: blind_pb2.BlindRound) -> None:
                copy = blind_pb2.BlindRound()
                copy.CopyFrom(r)
                kept[name] = copy
            return inner
        self.run(session, keep("one"), keep("two"))
        return session, kept["one"], kept["two"]


def _flip(data_: bytes) -> bytes:
    return data_[:10] + bytes([data_[10] ^ 1]) + data_[11:]


def test_tampered_answer_is_rejected(world: tuple[ThreadedFederation, Recorder]) -> None:
    manual = ManualLookup(world[0])

    def tamper(two: blind_pb2.BlindRound) -> None:
        for sealed in two.answers:
            if sealed.agency_id == "police":
                sealed.box.ciphertext = _flip(sealed.box.ciphertext)

    states = {a.agency_id: a for a in manual.run(manual.session(lookup_request(**CAST["leah"])),
                                                 tamper_two=tamper).answers}
    assert states["police"].state == R.ANSWER_STATE_NOT_CHECKED
    assert "rejected" in states["police"].detail
    assert states["health"].state == R.ANSWER_STATE_KNOWN  # the others still arrive


def test_answers_arrive_sealed_with_hpke(world: tuple[ThreadedFederation, Recorder]) -> None:
    _, one, two = ManualLookup(world[0]).rounds(lookup_request(**CAST["leah"]))
    assert one.answers and two.answers
    assert {s.box.version for s in [*one.answers, *two.answers]} == {VERSION_HPKE}


def test_a_box_in_an_unknown_or_wrong_format_version_fails_closed(
        world: tuple[ThreadedFederation, Recorder]) -> None:
    manual = ManualLookup(world[0])

    def relabel(two: blind_pb2.BlindRound) -> None:
        for sealed in two.answers:
            if sealed.agency_id == "police":
                sealed.box.version = 3  # a format this build does not know
            if sealed.agency_id == "csc":
                sealed.box.version = 1  # an HPKE box claimed to be the earlier format

    answers = {a.agency_id: a for a in manual.run(
        manual.session(lookup_request(**CAST["leah"])), tamper_two=relabel).answers}
    assert answers["police"].state == R.ANSWER_STATE_NOT_CHECKED
    assert "format version 3, which this build does not know" in answers["police"].detail
    assert answers["csc"].state == R.ANSWER_STATE_NOT_CHECKED
    assert "does not open" in answers["csc"].detail
    assert answers["health"].state == R.ANSWER_STATE_KNOWN  # positive control


def test_an_analyst_on_the_earlier_format_is_still_answered(
        world: tuple[ThreadedFederation, Recorder], monkeypatch: pytest.MonkeyPatch) -> None:
    """The move-over, analyst to agent: subjects sealed in format 1 (no version on the wire,
    as a build before HPKE sent them) still open at the agents, which answer in HPKE."""
    threaded, recorder = world

    def old_sender(*args: Any) -> Box:
        return replace(seal_legacy(*args), version=0)

    monkeypatch.setattr(blind_session, "seal", old_sender)
    recorder.clear()
    with _client(threaded.fed) as client:
        states = _states(client.blind_lookup(lookup_request(**CAST["leah"])).response)
    second = [q for q in recorder.queries_to() if q.round == 2]
    assert second and {q.sealed_subject.version for q in second} == {0}
    assert states["health"] == "KNOWN" and states["csc"] == "KNOWN"


def test_an_agent_on_the_earlier_format_is_still_read(
        world: tuple[ThreadedFederation, Recorder], monkeypatch: pytest.MonkeyPatch) -> None:
    """The move-over, agent to analyst: answers sealed in format 1 still open."""
    monkeypatch.setattr(agent_blind, "seal", seal_legacy)
    _, one, two = (manual := ManualLookup(world[0])).rounds(lookup_request(**CAST["leah"]))
    assert {s.box.version for s in [*one.answers, *two.answers]} == {1}
    states = _states(manual.run(manual.session(lookup_request(**CAST["leah"]))))
    assert states["health"] == "KNOWN" and states["csc"] == "KNOWN"


def test_swapped_answers_are_rejected(world: tuple[ThreadedFederation, Recorder]) -> None:
    manual = ManualLookup(world[0])

    def swap(two: blind_pb2.BlindRound) -> None:
        by = {s.agency_id: s for s in two.answers}
        police, health = blind_pb2.SealedBox(), blind_pb2.SealedBox()
        police.CopyFrom(by["police"].box)
        health.CopyFrom(by["health"].box)
        by["police"].box.CopyFrom(health)
        by["health"].box.CopyFrom(police)

    answers = {a.agency_id: a for a in manual.run(
        manual.session(lookup_request(**CAST["leah"])), tamper_two=swap).answers}
    for agency in ("police", "health"):
        assert answers[agency].state == R.ANSWER_STATE_NOT_CHECKED
        assert "rejected" in answers[agency].detail
    assert answers["csc"].state == R.ANSWER_STATE_KNOWN


def test_replayed_answers_are_rejected(world: tuple[ThreadedFederation, Recorder]) -> None:
    manual = ManualLookup(world[0])
    request = lookup_request(**CAST["leah"])
    _, old_one, old_two = manual.rounds(request)

    # A whole round from an earlier lookup: the session refuses the lookup outright.
    with pytest.raises(BlindLookupError, match="request hash"):
        manual.run(manual.session(request), tamper_one=lambda one: one.CopyFrom(old_one))

    # Old answers dressed up with this lookup's ids: each one fails to open.
    def replay(two: blind_pb2.BlindRound) -> None:
        by = {s.agency_id: s for s in two.answers}
        for old in old_two.answers:
            by[old.agency_id].box.CopyFrom(old.box)

    answers = {a.agency_id: a for a in manual.run(manual.session(request),
                                                  tamper_two=replay).answers}
    for agency in AGENCIES:
        assert answers[agency].state == R.ANSWER_STATE_NOT_CHECKED, agency
        assert "rejected" in answers[agency].detail


def test_broker_cannot_forge_or_drop_answers(world: tuple[ThreadedFederation, Recorder]
                                             ) -> None:
    manual = ManualLookup(world[0])

    def forge(two: blind_pb2.BlindRound) -> None:
        # Drop police's sealed answer and claim, unsigned, that police does not know Leah.
        kept = [s for s in two.answers if s.agency_id != "police"]
        del two.answers[:]
        two.answers.extend(kept)
        two.broker_answers.add(agency_id="police", state=R.ANSWER_STATE_NOT_KNOWN)

    answers = {a.agency_id: a for a in manual.run(
        manual.session(lookup_request(**CAST["leah"])), tamper_two=forge).answers}
    assert answers["police"].state == R.ANSWER_STATE_NOT_CHECKED
    assert "not believed" in answers["police"].detail


def test_broker_rejects_malformed_blind_requests(world: tuple[ThreadedFederation, Recorder]
                                                 ) -> None:
    manual = ManualLookup(world[0])
    session = manual.session(lookup_request(**CAST["leah"]))
    bad = session.first()
    bad.query.match_tokens.append(b"short")
    call = manual.stub.BlindLookup(iter([bad]), timeout=10,
                                   metadata=(("authorization", f"Bearer {manual.token}"),))
    with pytest.raises(grpc.RpcError) as err:
        next(call)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "16 bytes" in err.value.details()


def test_round_two_only_for_agencies_that_answered(world: tuple[ThreadedFederation, Recorder]
                                                   ) -> None:
    manual = ManualLookup(world[0])
    call, outbox = manual.open(manual.session(lookup_request(**CAST["leah"])))
    next(call)
    outbox.put(blind_pb2.BlindLookupRequest(subjects=blind_pb2.SealedSubjects(subjects=[
        blind_pb2.SealedSubject(agency_id="probation", box=blind_pb2.SealedBox())])))
    with pytest.raises(grpc.RpcError) as err:
        next(call)
    outbox.put(None)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "probation" in err.value.details()


def test_agent_without_blind_keys_is_never_sent_a_blind_query(tmp_path: Path) -> None:
    """Its hello says it takes no blind lookups, so the broker answers NOT_CHECKED for it
    without asking it (the words are the broker's, not the agent's)."""
    fed = build_federation(tmp_path / "fed", agent_overrides={"education": {"blind": None}})
    threaded = ThreadedFederation(fed, ["police", "education"])
    try:
        registry = threaded.run.broker.registry
        assert registry.get("police").hello.accepts_blind  # positive control
        assert not registry.get("education").hello.accepts_blind
        with _client(fed) as client:
            answers = {a.agency_id: a for a in client.lookup(
                lookup_request(**CAST["leah"])).answers}
    finally:
        threaded.close()
    assert answers["education"].state == R.ANSWER_STATE_NOT_CHECKED
    assert answers["education"].not_checked_reason == R.NOT_CHECKED_REASON_AGENT_ERROR
    assert "agent does not take blind lookups" in answers["education"].detail
    assert "so it was not asked" in answers["education"].detail
    assert answers["police"].state == R.ANSWER_STATE_KNOWN


def _export(config: Path, lookup_id: str) -> list[dict[str, object]]:
    out = subprocess.run([sys.executable, "-m", "mash", "audit", "export", "--config",
                          str(config), "--format", "json", "--out", "-", "--lookup-id",
                          lookup_id], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["entries"]


def test_blind_audit_trails(world: tuple[ThreadedFederation, Recorder]) -> None:
    threaded, _ = world
    fed = threaded.fed
    with _client(fed) as client:
        lookup_id = client.lookup(lookup_request(**CAST["ruby"], case="MASH-BLIND-AUD")
                                  ).lookup_id
    # The broker records who asked, why, and which agencies answered: never the subject.
    broker = _export(fed.broker_config, lookup_id)
    states = {o["agency"]: o["state"] for e in broker for o in e.get("outcomes", [])}
    assert states["health"] == "SEALED" and states["probation"] == "NOT_CHECKED"
    # Health had a candidate and then the subject: its trail holds the keyed subject hashes.
    health = _export(fed.agent_configs["health"], lookup_id)
    assert [o["state"] for e in health for o in e["outcomes"]] == ["CANDIDATE", "WITHHELD"]
    police = _export(fed.agent_configs["police"], lookup_id)
    assert [o["state"] for e in police for o in e["outcomes"]] == ["NOT_KNOWN", "NOT_KNOWN"]
    # "Who looked up Ruby Clarke?" finds the lookup where the subject was seen (health),
    # and not where it never was (the broker, and police, which had no candidate).
    for config, seen in ((fed.agent_configs["health"], True), (fed.broker_config, False),
                         (fed.agent_configs["police"], False)):
        found = subprocess.run([sys.executable, "-m", "mash", "audit", "search", "--config",
                                str(config), "--name", "Ruby Clarke", "--dob", "2017-02-03"],
                               capture_output=True, text=True)
        assert found.returncode == 0, found.stderr
        assert ("MASH-BLIND-AUD" in found.stdout) is seen, (config, found.stdout)
    for config in (fed.broker_config, fed.agent_configs["health"]):
        verify = subprocess.run([sys.executable, "-m", "mash", "audit", "verify", "--config",
                                 str(config)], capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
