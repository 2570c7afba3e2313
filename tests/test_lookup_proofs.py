"""Lookups bound to the analyst's key, end to end: a real broker and real agents on loopback
(mTLS), tokens bound to a proof key (cnf.jkt). The broker checks each lookup's proof before
routing and forwards it; each agent checks it again with its own replay cache. A copied token
(no key), a forged or replayed query, a stale proof: refused at the broker, and at an agent
when a broker alters or replays what it forwards."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import jwt
import pytest
import yaml

from mash.client import BrokerClient, ClientConfig
from mash.demo import federation
from mash.identity.dpop import ClientKey
from mash.v1 import answer_pb2 as R
from mash.v1 import lookup_pb2
from tests.helpers import Running, build_federation, lookup_request
from tests.oidc_support import OidcProvider, device_tokens
from tests.proof_support import (
    AGENCIES,
    LEAH,
    ask,
    bind_token_file,
    bound_token,
    demo_up,
    events,
    mash,
    needs_idp,
    plain_query,
    require_proofs,
    signed,
    started,
    token_rejected,
)
from tests.test_oidc_federation import USERS as OIDC_USERS
from tests.test_oidc_federation import trust


@pytest.fixture
async def run(tmp_path: Path) -> AsyncIterator[Running]:
    async with demo_up(tmp_path) as running:
        yield running


async def refused(run: Running, token: str, request: lookup_pb2.LookupRequest) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await run.analyst(token).lookup(request)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, caught.value.details()
    return caught.value.details() or ""


async def test_a_signed_lookup_is_answered_and_forgeries_are_refused_at_the_broker(
        run: Running) -> None:
    key = ClientKey.generate()
    token = bound_token(run.fed, key)
    request = lookup_request()
    good = signed(key, token, request)
    answered = await run.analyst(token).lookup(good)  # the positive control
    assert {a.state for a in answered.answers} == {R.ANSWER_STATE_KNOWN}

    assert "no request proof" in await refused(run, token, request)  # a copied token
    other = lookup_request(name="Ava Thompson")  # the proof reused for another child
    other.proof = signed(key, token, request).proof
    assert "for another request: the lookup was altered or forged" in \
        await refused(run, token, other)
    assert "used before: a replayed request" in await refused(run, token, good)
    thief = ClientKey.generate()
    assert "signed by a key other than the one the analyst token is bound to" in \
        await refused(run, token, signed(thief, token, request))
    stale = signed(key, token, request, now=time.time() - 120)
    assert "made more than 60 s from now" in await refused(run, token, stale)

    assert run.broker is not None
    refusals = events(run.broker, "refused")
    assert len(refusals) == 5
    assert all(e["detail"].startswith("request proof: ") and e["requester"] == "a.analyst"
               and not e["asked"] for e in refusals)
    assert len(events(run.broker, "lookup")) == 1  # only the genuine one was routed
    # a fresh proof for the same question is another lookup, answered (not a replay)
    again = await run.analyst(token).lookup(signed(key, token, request))
    assert {a.state for a in again.answers} == {R.ANSWER_STATE_KNOWN}


async def test_an_agent_refuses_what_a_broker_altered_or_replays(run: Running) -> None:
    """The agent is driven directly, as a broker would: a real agent, its own checks."""
    key = ClientKey.generate()
    token = bound_token(run.fed, key)
    request = lookup_request()
    police = run.agents["police"]
    proof = signed(key, token, request).proof
    answer = await ask(police, plain_query(token, request, proof))  # the positive control
    assert answer.state == R.ANSWER_STATE_KNOWN, answer.detail
    token_rejected(await ask(police, plain_query(token, request, proof)), "used before")

    fresh = signed(key, token, request).proof
    altered = lookup_request(name="Ava Thompson")  # the broker asks about another child
    token_rejected(await ask(police, plain_query(token, altered, fresh)), "for another request")
    widened = lookup_request(purpose="child_safeguarding", stage="s47")  # or another stage
    token_rejected(await ask(police, plain_query(token, widened, fresh)), "for another request")
    token_rejected(await ask(police, plain_query(token, request, "")), "no request proof")

    # A proof the broker forwarded with a lookup: the agent saw it, and refuses it again.
    forwarded = signed(key, token, request)
    answered = await run.analyst(token).lookup(forwarded)
    assert {a.state for a in answered.answers} == {R.ANSWER_STATE_KNOWN}
    token_rejected(await ask(police, plain_query(token, request, forwarded.proof)), "used before")


async def test_required_proofs_refuse_unbound_tokens_and_pass_bound_ones(
        tmp_path: Path) -> None:
    fed = build_federation(tmp_path / "fed", AGENCIES, background=50)
    require_proofs(fed)
    run = await started(fed)
    try:
        # the demo's tokens are bound to the client certificate (cnf.x5t#S256): required
        # proofs mean they need a certificate proof too (tests/test_cert_bound_lookups.py)
        cert_bound = fed.token()
        assert "no request proof: this service requires every lookup to be signed" in \
            await refused(run, cert_bound, lookup_request())
        unbound = fed.token(bind=None)
        key = ClientKey.generate()
        token = bound_token(fed, key)
        answered = await run.analyst(token).lookup(signed(key, token, lookup_request()))
        assert {a.state for a in answered.answers} == {R.ANSWER_STATE_KNOWN}
        # the agents require it too, whatever a broker lets through
        answer = await ask(run.agents["health"], plain_query(unbound, lookup_request(), ""))
        token_rejected(answer, "must be bound to a proof key (cnf.jkt) or to the client "
                               "certificate (cnf.x5t#S256)")
    finally:
        await run.stop()


async def test_mash_lookup_signs_with_the_key_beside_the_token_file(run: Running) -> None:
    fed = run.fed
    token_file = Path(yaml.safe_load(fed.client_config.read_text())["token_file"])
    code, out, err = await mash(  # a development token bound to a new key (and the cert)
        "token", "issue", "--key", str(fed.issuer_key), "--issuer", federation.ISSUER,
        "--subject", "a.analyst", "--agency", federation.REQUESTER, "--ttl", "1h",
        "--bind-cert", str(fed.certs / "mash-client.pem"), "--bind-key", f"{token_file}.key")
    assert code == 0, err
    token_file.write_text(out)
    cnf = jwt.decode(out.strip(), options={"verify_signature": False})["cnf"]
    assert cnf["jkt"] == ClientKey.from_pem(Path(f"{token_file}.key").read_bytes()).thumbprint
    assert cnf["x5t#S256"]
    not_a_key = fed.root / "not-a-key.pem"
    not_a_key.write_text("hello\n")
    code, _, err = await mash(
        "token", "issue", "--key", str(fed.issuer_key), "--issuer", federation.ISSUER,
        "--subject", "a.analyst", "--agency", federation.REQUESTER, "--bind-key", str(not_a_key))
    assert code == 1 and err.count("\n") == 1 and "not a readable PEM private key" in err
    config = str(fed.client_config)
    code, out, err = await mash("lookup", *LEAH, "--config", config)
    assert code == 0, err  # the positive control: signed, checked, answered
    assert "KNOWN" in out and "NOT CHECKED" not in out
    token = token_file.read_text().strip()
    code, _, err = await mash("lookup", *LEAH, "--config", config, "--token", token)
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "bound to a proof key (cnf.jkt), which only the token file's FILE.key holds" in err
    (token_file.parent / (token_file.name + ".key")).write_bytes(ClientKey.generate().to_pem())
    code, _, err = await mash("lookup", *LEAH, "--config", config)
    assert code == 1 and err.count("\n") == 1
    assert f"{token_file}.key is not the key the token is bound to" in err
    (token_file.parent / (token_file.name + ".key")).unlink()
    code, _, err = await mash("lookup", *LEAH, "--config", config)
    assert code == 1 and err.count("\n") == 1
    assert f"{token_file}.key is missing: run mash login --bind-key again" in err


async def test_a_retry_is_signed_again_not_replayed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A broker that cannot write its audit answers UNAVAILABLE after it checked the proof:
    the client's retry carries a new proof, so it is not refused as a replay there, and is
    answered by the other broker under the same lookup id."""
    monkeypatch.setenv("MASH_AUDIT_WRITE_TIMEOUT", "0.3")  # a locked audit fails fast
    fed = build_federation(tmp_path / "fed", AGENCIES, background=50, brokers=2)
    bind_token_file(fed)
    run = Running(fed)
    await run.start_broker(1)
    await run.start_broker(2)
    for agency in AGENCIES:
        await run.start_agent(agency)
    lock = sqlite3.connect(fed.root / "audit" / "broker-2.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        cfg = ClientConfig.load(fed.client_config)
        assert cfg.proof_key is not None
        both = list(cfg.addresses)
        cfg.broker = [both[1]]  # the locked broker only: every attempt lands there
        with BrokerClient(cfg) as locked:
            with pytest.raises(grpc.RpcError) as caught:
                await asyncio.to_thread(locked.lookup, lookup_request())
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # not UNAUTHENTICATED
            assert locked.retried == cfg.attempts - 1
        assert not events(run.more_brokers[2], "refused")
        cfg.broker = both
        with BrokerClient(cfg) as client:
            answered = [await asyncio.to_thread(client.lookup, lookup_request())
                        for _ in range(4)]
            assert client.retried >= 1
        assert all({a.state for a in r.answers} == {R.ANSWER_STATE_KNOWN} for r in answered)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
        await run.stop()


@needs_idp
async def test_a_real_providers_key_bound_token_is_answered_only_when_signed(
        tmp_path: Path) -> None:
    """The token the real oidc-provider binds to the key (cnf.jkt), as `mash login
    --bind-key` gets it: signed, answered by broker and agents; the same token unsigned,
    refused."""
    fed = build_federation(tmp_path / "fed", AGENCIES, background=50)
    idp = OidcProvider.start(tmp_path / "oidc", users=OIDC_USERS)
    try:
        trust(fed.broker_config, idp, 60, broker=True)
        for agency in AGENCIES:
            trust(fed.agent_configs[agency], idp, 60)
        key = ClientKey.generate()
        token = (await asyncio.to_thread(device_tokens, idp, "ann", proof_key=key))[
            "access_token"]
        run = await started(fed)
        try:
            answered = await run.analyst(token).lookup(signed(key, token, lookup_request()))
            assert {a.state for a in answered.answers} == {R.ANSWER_STATE_KNOWN}
            assert "no request proof" in await refused(run, token, lookup_request())
        finally:
            await run.stop()
    finally:
        idp.stop()
