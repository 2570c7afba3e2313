"""Certificate-bound blind lookups, end to end: tokens from the real npm oidc-provider's mTLS
endpoints (cnf.x5t#S256), a real broker and real agents on loopback with mTLS, both blind
rounds signed with the client certificate's key (mash-cert-proof+jwt with x5c), the broker
and every agent checking each proof with their own replay caches. Then the agents' check of
a proof's certificate against the federation CRL, reloaded while they run. Each refusal has
its positive control, and no refusal is NOT_KNOWN."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from structlog.testing import capture_logs

from mash.blind import proofs as blind_proofs
from mash.client import BrokerClient, ClientConfig
from mash.identity import crl
from mash.identity.cert_binding import PROOF_TYPE
from mash.v1 import answer_pb2 as R
from mash.v1 import blind_pb2
from tests.helpers import Running, build_federation, lookup_request
from tests.proof_support import (
    AGENCIES,
    Setup,
    Stream,
    ask,
    blind_answer,
    blind_refusals_audited,
    blind_rejected,
    blind_session,
    cert_bound_token,
    cert_bound_up,
    cert_key,
    events,
    forged,
    needs_idp,
    plain_query,
    replayed_round_two,
    round_query,
    second_client,
    signed,
    states,
    token_rejected,
    whole,
)


@pytest.fixture
async def required(tmp_path: Path) -> AsyncIterator[Setup]:
    """Certificate-bound tokens, require_bound_proof at the broker and every agent."""
    async with cert_bound_up(tmp_path, require=True) as setup:
        yield setup


@needs_idp
async def test_a_cert_bound_blind_lookup_is_signed_and_forgeries_are_refused_at_the_broker(
        required: Setup) -> None:
    run, fed = required.run, required.fed
    token = await cert_bound_token(required)
    key, other = cert_key(fed), cert_key(fed, "mash-client-2")
    # The positive control: both rounds signed with the certificate's key, checked by the
    # broker and by each agent (require_bound_proof is on everywhere).
    blind = blind_session(fed, key, token)
    first, second, answered = await whole(run, token, blind)
    assert states(answered) == {a: R.ANSWER_STATE_KNOWN for a in AGENCIES}
    proofs = [first.proof, *(s.proof for s in second.subjects.subjects)]
    assert len(set(proofs)) == 1 + len(AGENCIES)
    for proof in proofs:
        header = jwt.get_unverified_header(proof)
        assert header["typ"] == PROOF_TYPE and "jwk" not in header and len(header["x5c"]) == 1

    # A copied token, without the certificate's key: round one unsigned.
    assert "round one: no request proof" in \
        await Stream(run, token).refused(blind_session(fed, None, token).first())
    # Signed with another analyst's certificate of the same agency.
    assert "signed with a certificate other than the one the analyst token is bound to" in \
        await Stream(run, token).refused(blind_session(fed, other, token).first())
    # The genuine certificate in x5c, signed by another key.
    fake = blind_session(fed, key, token)
    step = fake.first()
    step.proof = forged(key, token=token, method=blind_proofs.BLIND_METHOD,
                        request=blind_proofs.round_one_bytes(fake.digest))
    assert "round one: the request proof's signature does not verify" in \
        await Stream(run, token).refused(step)
    # Round one replayed whole.
    assert "round one: the request proof was used before: a replayed request" in \
        await Stream(run, token).refused(first)

    # Round two: one box unsigned, then the old round two replayed after a fresh round one.
    unsigned = blind_session(fed, key, token)
    stream = Stream(run, token)
    one = (await stream.send(unsigned.first())).round_one  # a genuine round one passes
    assert {s.agency_id for s in one.answers} == set(AGENCIES)
    step = unsigned.second(one)
    next(s for s in step.subjects.subjects if s.agency_id == "police").ClearField("proof")
    assert "round two, the box for police: no request proof" in await stream.refused(step)
    assert "the request proof was used before: a replayed request" in \
        await replayed_round_two(run, token, blind, second)
    blind_refusals_audited(run, 6)
    # and the key's holder is still answered, after all those refusals
    _, _, answered = await whole(run, token, blind_session(fed, key, token))
    assert states(answered) == {a: R.ANSWER_STATE_KNOWN for a in AGENCIES}


@needs_idp
async def test_agents_refuse_cert_bound_blind_rounds_a_broker_forged_or_replays(
        required: Setup) -> None:
    """Each agent driven directly, as a broker would: its own checks, its own cache."""
    run, fed = required.run, required.fed
    token = await cert_bound_token(required)
    key, other = cert_key(fed), cert_key(fed, "mash-client-2")
    police = run.agents["police"]
    blind = blind_session(fed, key, token)
    proof = blind.first().proof
    found = await blind_answer(police, blind, round_query(blind, token, 1, proof))
    assert found[0], found[1].detail  # the positive control: a candidate
    blind_rejected(await blind_answer(police, blind,
                                      round_query(blind, token, 1, proof)),
                   "used before: a replayed request")
    blind_rejected(await blind_answer(police, blind,
                                      round_query(blind, token, 1, "")), "no request proof")
    theirs = blind_session(fed, other, token).first().proof
    blind_rejected(await blind_answer(police, blind,
                                      round_query(blind, token, 1, theirs)),
                   "signed with a certificate other than the one the analyst token is bound to")
    fake = forged(key, token=token, method=blind_proofs.BLIND_METHOD,
                  request=blind_proofs.round_one_bytes(blind.digest))
    blind_rejected(await blind_answer(police, blind,
                                      round_query(blind, token, 1, fake)),
                   "signature does not verify")

    # Round two through police: the genuine box and proof, then replayed, moved, unsigned.
    one = blind_pb2.BlindRound(request_hash=blind.digest)
    for agency in AGENCIES:
        agent = run.agents[agency]
        assert agent.blind is not None
        reply = await asyncio.to_thread(agent.blind.receive,
                                        round_query(blind, token, 1, blind.first().proof))
        one.answers.add(agency_id=agency, box=reply.sealed_answer)
    boxes = {s.agency_id: s for s in blind.second(one).subjects.subjects}
    health_box = round_query(blind, token, 2, boxes["health"].proof, boxes["health"].box)
    blind_rejected(await blind_answer(police, blind, health_box),
                   "for another request")
    blind_rejected(await blind_answer(police, blind, round_query(
        blind, token, 2, "", boxes["police"].box)), "no request proof")
    genuine = round_query(blind, token, 2, boxes["police"].proof, boxes["police"].box)
    _, answer = await blind_answer(police, blind, genuine)
    assert answer.state == R.ANSWER_STATE_KNOWN, answer.detail
    blind_rejected(await blind_answer(police, blind, round_query(
        blind, token, 2, boxes["police"].proof, boxes["police"].box)),
        "used before: a replayed request")


@needs_idp
async def test_the_client_signs_a_cert_bound_blind_lookup_with_its_tls_key(
        required: Setup) -> None:
    run, fed = required.run, required.fed
    token = await cert_bound_token(required)
    assert fed.blind_client_config is not None
    cfg = ClientConfig.load(fed.blind_client_config, token=token)
    assert cfg.proof_key is not None and cfg.proof_key.thumbprint == cert_key(fed).thumbprint
    with BrokerClient(cfg) as client:
        result = await asyncio.to_thread(client.blind_lookup, lookup_request())
    assert states(result.response) == {a: R.ANSWER_STATE_KNOWN for a in AGENCIES}
    assert run.broker is not None
    assert not events(run.broker, "refused") and len(events(run.broker, "lookup")) == 1


async def test_agents_refuse_a_proof_whose_certificate_is_revoked_once_the_crl_says_so(
        tmp_path: Path) -> None:
    """The agent's own check: driven directly (as a broker that let a revoked certificate's
    proof through would), against the federation CRL it reloads without a restart."""
    fed = build_federation(tmp_path / "fed", AGENCIES, background=50)
    second_client(fed)
    async with Running.up(fed, AGENCIES) as run:
        police = run.agents["police"]
        request = lookup_request()
        token, kept = fed.token(bind="mash-client-2"), fed.token()
        key, kept_key = cert_key(fed, "mash-client-2"), cert_key(fed)
        # before: the certificate's proofs are answered, plain and blind
        answer = await ask(police, plain_query(token, request, signed(key, token,
                                                                      request).proof))
        assert answer.state == R.ANSWER_STATE_KNOWN, answer.detail
        blind = blind_session(fed, key, token)
        assert (await blind_answer(police, blind,
                                   round_query(blind, token, 1, blind.first().proof)))[0]

        crl.revoke(fed.certs, cert=fed.certs / "mash-client-2.pem", reason="key-compromise")

        async def revoked_answer() -> R.AgencyAnswer:
            return await ask(police, plain_query(token, request, signed(key, token,
                                                                        request).proof))

        with capture_logs() as logs:
            await wait_until_state(revoked_answer, R.ANSWER_STATE_NOT_CHECKED)
            answer = await revoked_answer()
        token_rejected(answer, "the request proof's client certificate is refused: "
                               "certificate serial")
        assert "has been revoked by the federation's CA" in answer.detail
        assert "Thompson" not in answer.detail and "Leah" not in answer.detail
        refusals = [e for e in logs if e["event"] == "query_proof_refused"]
        assert refusals and all("revoked" in e["reason"] and "Thompson" not in str(e)
                                for e in refusals)
        blind = blind_session(fed, key, token)
        blind_rejected(await blind_answer(police, blind,
                                          round_query(blind, token, 1, blind.first().proof)),
                       "has been revoked by the federation's CA")
        # the positive control: another certificate, unrevoked, on the same agent
        answer = await ask(police, plain_query(kept, request, signed(kept_key, kept,
                                                                     request).proof))
        assert answer.state == R.ANSWER_STATE_KNOWN, answer.detail
        blind = blind_session(fed, kept_key, kept)
        assert (await blind_answer(police, blind,
                                   round_query(blind, kept, 1, blind.first().proof)))[0]

        # A list that cannot be read fails closed, for the unrevoked certificate too, and a
        # good list again lets it back: both without a restart.
        path = fed.certs / crl.CRL_FILE
        good = path.read_bytes()
        path.write_text("not a revocation list\n")

        async def kept_answer() -> R.AgencyAnswer:
            return await ask(police, plain_query(kept, request, signed(kept_key, kept,
                                                                       request).proof))

        await wait_until_state(kept_answer, R.ANSWER_STATE_NOT_CHECKED)
        token_rejected(await kept_answer(), "certificates cannot be checked")
        path.write_bytes(good)
        await wait_until_state(kept_answer, R.ANSWER_STATE_KNOWN)


async def wait_until_state(asked: Any, state: int, timeout: float = 10) -> None:
    """Ask again (a fresh proof each time) until the answer is in `state`: the agent reads
    the list each second."""
    deadline = time.monotonic() + timeout
    while (answer := await asked()).state != state:
        assert time.monotonic() < deadline, answer
        await asyncio.sleep(0.2)
