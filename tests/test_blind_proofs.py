"""Blind lookups bound to the analyst's key, end to end: a real broker and real agents on
loopback (mTLS, Rego, SQLite audit), tokens bound to a proof key (cnf.jkt). Round one is
signed over the BlindQuery's request hash, each round-two box over the request hash, that
box and its agency (mash/blind/proofs.py). The broker checks every proof and forwards it;
each agent checks it again with its own replay cache. A copied token (no key), another key,
a replayed round, a stale proof, a box moved to another agency, a round-two proof for
another round-one request: each refused at the broker (UNAUTHENTICATED) and at an agent
(NOT_CHECKED, token rejected, never NOT_KNOWN), each beside a positive control."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mash.blind import proofs as blind_proofs
from mash.client import BrokerClient, ClientConfig
from mash.identity.dpop import ClientKey
from mash.v1 import agent_pb2, blind_pb2
from mash.v1 import answer_pb2 as R
from tests.helpers import Running, build_federation, lookup_request
from tests.proof_support import (
    AGENCIES,
    LEAH,
    Stream,
    bind_token_file,
    blind_answer,
    blind_refusals_audited,
    blind_rejected,
    blind_session,
    bound_token,
    demo_up,
    events,
    mash,
    replayed_round_two,
    require_proofs,
    round_query,
    started,
    states,
    whole,
)


@pytest.fixture
async def run(tmp_path: Path) -> AsyncIterator[Running]:
    async with demo_up(tmp_path) as running:
        yield running


def copy(message: Any) -> Any:
    out = type(message)()
    out.CopyFrom(message)
    return out


async def test_a_signed_blind_lookup_is_answered_and_forgeries_are_refused_at_the_broker(
        run: Running) -> None:
    key = ClientKey.generate()
    token = bound_token(run.fed, key)
    # The positive control: both rounds signed, checked by the broker and by each agent.
    signed = blind_session(run.fed, key, token)
    first, second, answered = await whole(run, token, signed)
    assert states(answered) == {a: R.ANSWER_STATE_KNOWN for a in AGENCIES}
    assert first.proof and all(s.proof for s in second.subjects.subjects)
    assert len({s.proof for s in second.subjects.subjects}) == len(AGENCIES)  # one each
    # An unbound token still makes an unsigned blind lookup (require_bound_proof unset).
    unbound = run.fed.token()
    _, _, plain = await whole(run, unbound, blind_session(run.fed, None, unbound))
    assert states(plain) == {a: R.ANSWER_STATE_KNOWN for a in AGENCIES}

    # A copied token, without the key: round one carries no proof.
    assert "round one: no request proof" in \
        await Stream(run, token).refused(blind_session(run.fed, None, token).first())
    # A proof from another key.
    thief = ClientKey.generate()
    assert "signed by a key other than the one the analyst token is bound to" in \
        await Stream(run, token).refused(blind_session(run.fed, thief, token).first())
    # A proof made two minutes ago (outside the 60 s window).
    stale = blind_session(run.fed, key, token)
    step = stale.first()
    step.proof = blind_proofs.sign_round_one(key, token=token, digest=stale.digest,
                                             now=time.time() - 120)
    assert "round one: the request proof was made more than 60 s from now" in \
        await Stream(run, token).refused(step)
    # Round one replayed whole.
    assert "round one: the request proof was used before: a replayed request" in \
        await Stream(run, token).refused(first)

    async def round_two(tamper: Any) -> str:
        """A fresh, genuine round one, then its round two as `tamper` leaves it."""
        blind = blind_session(run.fed, key, token)
        stream = Stream(run, token)
        one = (await stream.send(blind.first())).round_one
        assert {s.agency_id for s in one.answers} == set(AGENCIES)
        step = blind.second(one)
        tamper(step.subjects)
        return await stream.refused(step)

    def swap_boxes(subjects: blind_pb2.SealedSubjects) -> None:
        by = {s.agency_id: s for s in subjects.subjects}
        police = copy(by["police"].box)
        by["police"].box.CopyFrom(by["health"].box)
        by["health"].box.CopyFrom(police)

    refused = await round_two(swap_boxes)
    assert "round two, the box for " in refused and "is for another request" in refused

    def relabel(subjects: blind_pb2.SealedSubjects) -> None:
        for sealed in subjects.subjects:  # box and proof together, to the other agency
            sealed.agency_id = "health" if sealed.agency_id == "police" else "police"

    assert "is for another request" in await round_two(relabel)

    other = blind_session(run.fed, key, token, lookup_request(name="Ava Thompson"))

    def other_request(subjects: blind_pb2.SealedSubjects) -> None:
        for sealed in subjects.subjects:  # signed by the key, for another round-one request
            sealed.proof = blind_proofs.sign_round_two(
                key, token=token, digest=other.digest, agency=sealed.agency_id, box=sealed.box)

    assert "is for another request" in await round_two(other_request)

    def unsigned(subjects: blind_pb2.SealedSubjects) -> None:
        next(s for s in subjects.subjects if s.agency_id == "police").ClearField("proof")

    assert "round two, the box for police: no request proof" in await round_two(unsigned)

    # Round two replayed: the key's holder signs round one afresh for the same query (the
    # same request hash), and the old round two is sent again: its proofs were used.
    assert "the request proof was used before: a replayed request" in \
        await replayed_round_two(run, token, signed, second)
    blind_refusals_audited(run, 9)


async def test_an_agent_refuses_blind_rounds_a_broker_forged_moved_or_replays(
        run: Running) -> None:
    """Each agent is driven directly, as a broker would drive it: its own checks."""
    key = ClientKey.generate()
    token = bound_token(run.fed, key)
    police, health = run.agents["police"], run.agents["health"]
    blind = blind_session(run.fed, key, token)
    proof = blind.first().proof

    # Round one: the positive control, then the same query again, unsigned, another key.
    assert (await blind_answer(police, blind, round_query(blind, token, 1, proof)))[0]
    blind_rejected(await blind_answer(police, blind, round_query(blind, token, 1, proof)),
                   "used before: a replayed request")
    blind_rejected(await blind_answer(police, blind, round_query(blind, token, 1, "")),
                   "no request proof")
    thief = blind_session(run.fed, ClientKey.generate(), token).first().proof
    blind_rejected(await blind_answer(police, blind, round_query(blind, token, 1, thief)),
                   "signed by a key other than the one the analyst token is bound to")

    # Round one through each agent (the broker forwards one proof to every agency asked).
    one = blind_pb2.BlindRound(request_hash=blind.digest)
    for agency, agent in (("police", police), ("health", health)):
        assert agent.blind is not None
        reply = await asyncio.to_thread(agent.blind.receive,
                                        round_query(blind, token, 1, blind.first().proof))
        one.answers.add(agency_id=agency, box=reply.sealed_answer)
    boxes = {s.agency_id: s for s in blind.second(one).subjects.subjects}
    assert set(boxes) == {"police", "health"}

    def two(agency: str, proof: str | None = None, box: str | None = None,
            query: blind_pb2.BlindQuery | None = None) -> agent_pb2.Query:
        return round_query(blind, token, 2, boxes[agency].proof if proof is None else proof,
                           boxes[box or agency].box, query)

    # A box moved to another agency, with its own proof or with the agency's: refused, and
    # neither proof is used up by the refusal.
    blind_rejected(await blind_answer(police, blind, two("health")), "for another request")
    blind_rejected(await blind_answer(police, blind, two("police", box="health")),
                   "for another request")
    # Round two paired with another round-one request.
    other = blind_session(run.fed, key, token, lookup_request(name="Ava Thompson"))
    blind_rejected(await blind_answer(police, other, two("police", query=other.query)),
                   "for another request")
    blind_rejected(await blind_answer(police, blind, two("police", proof="")),
                   "no request proof")
    # The positive controls: each genuine box, with its proof, to its own agency.
    for agency, agent in (("police", police), ("health", health)):
        _, found = await blind_answer(agent, blind, two(agency))
        assert found.state == R.ANSWER_STATE_KNOWN, found.detail
    # Round two replayed.
    blind_rejected(await blind_answer(police, blind, two("police")),
                   "used before: a replayed request")
    # Outside the time window: a proof made two minutes ago.
    old = blind_proofs.sign_round_two(key, token=token, digest=blind.digest, agency="police",
                                      box=boxes["police"].box, now=time.time() - 120)
    blind_rejected(await blind_answer(police, blind, two("police", proof=old)),
                   "made more than 60 s from now")
    # A fresh proof for the same box (a retry by the key's holder): accepted.
    fresh = blind_proofs.sign_round_two(key, token=token, digest=blind.digest,
                                        agency="police", box=boxes["police"].box)
    assert (await blind_answer(police, blind, two("police", proof=fresh)))[1].state == \
        R.ANSWER_STATE_KNOWN


async def test_required_proofs_refuse_unbound_blind_lookups_and_pass_signed_ones(
        tmp_path: Path) -> None:
    fed = build_federation(tmp_path / "fed", AGENCIES, background=50)
    require_proofs(fed)
    run = await started(fed)
    try:
        # the demo's tokens are bound to the client certificate: they need its proof
        cert_bound = fed.token()
        assert "round one: no request proof: this service requires every lookup to be " \
            "signed" in await Stream(run, cert_bound).refused(
                blind_session(fed, None, cert_bound).first())
        key = ClientKey.generate()
        token = bound_token(fed, key)
        _, _, answered = await whole(run, token, blind_session(fed, key, token))
        assert states(answered) == {a: R.ANSWER_STATE_KNOWN for a in AGENCIES}
        # the agents require it too, whatever a broker lets through
        unbound = fed.token(bind=None)
        blind = blind_session(fed, None, unbound)
        blind_rejected(await blind_answer(run.agents["health"], blind,
                                          round_query(blind, unbound, 1, "")),
                       "must be bound to a proof key (cnf.jkt) or to the client certificate")
    finally:
        await run.stop()


async def test_mash_lookup_signs_blind_lookups_with_the_key_beside_the_token_file(
        run: Running) -> None:
    """`mash lookup` with a client config whose `blind:` section makes every lookup blind,
    and a token file from `mash login --bind-key`: both rounds signed, answered."""
    token_file, key = bind_token_file(run.fed)
    assert run.fed.blind_client_config is not None
    config = str(run.fed.blind_client_config)
    bound = ClientConfig.load(config)
    assert bound.proof_key is not None and bound.proof_key.thumbprint == key.thumbprint
    code, out, err = await mash("lookup", *LEAH, "--config", config)
    assert code == 0, err
    assert "KNOWN" in out and "NOT CHECKED" not in out
    with BrokerClient(bound) as client:
        result = await asyncio.to_thread(client.blind_lookup, lookup_request())
    assert states(result.response) == {a: R.ANSWER_STATE_KNOWN for a in AGENCIES}
    assert run.broker is not None
    assert not events(run.broker, "refused")  # each round was signed and checked
    assert len(events(run.broker, "lookup")) == 2
    # The same token without its key: refused before anyone is asked.
    (token_file.parent / (token_file.name + ".key")).unlink()
    code, _, err = await mash("lookup", *LEAH, "--config", config)
    assert code == 1 and err.count("\n") == 1
    assert f"{token_file}.key is missing: run mash login --bind-key again" in err
