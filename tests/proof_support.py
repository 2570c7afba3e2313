"""What the request-proof tests share (tests/test_lookup_proofs.py, test_blind_proofs.py,
test_cert_bound_lookups.py, test_cert_bound_blind.py): a real broker and real agents on
loopback (mTLS), bound tokens (a proof key, cnf.jkt; the client certificate, cnf.x5t#S256,
from the real npm oidc-provider's mTLS endpoints), signing plain lookups and blind rounds
with the key the token is bound to, driving agents directly as a broker would, and asserting
refusals: UNAUTHENTICATED at the broker, NOT_CHECKED (token rejected) at an agent."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from mash.agent.service import Agent
from mash.blind.session import BlindSession
from mash.broker.server import Broker
from mash.client import ClientConfig
from mash.demo import federation
from mash.identity import certs, device
from mash.identity.cert_binding import PROOF_TYPE, CertKey
from mash.identity.dpop import ClientKey
from mash.identity.names import PeerIdentity
from mash.identity.request_binding import LOOKUP_TARGET, BoundKey, sign_lookup
from mash.v1 import agent_pb2, blind_pb2, lookup_pb2, lookup_pb2_grpc
from mash.v1 import answer_pb2 as R
from tests.helpers import Running, build_federation, lookup_request
from tests.oidc_support import Mtls, OidcProvider, available, device_tokens
from tests.test_oidc_federation import USERS as OIDC_USERS
from tests.test_oidc_federation import trust

AGENCIES = ["police", "health"]
MASH = [sys.executable, "-m", "mash"]
LEAH = ["--name", "Leah Thompson", "--dob", "2014-05-17", "--postcode", "LS9 8AB",
        "--purpose", "child_safeguarding", "--stage", "research", "--case", "MASH-2026-1",
        "--reason", "School referral about bruising"]
needs_idp = pytest.mark.skipif(bool(available()), reason=available() or "")


# -- federations ----------------------------------------------------------------------------

def require_proofs(fed: federation.Federation, require: bool = True) -> None:
    """`auth.require_bound_proof` in broker.yaml and every agent.yaml."""
    for path in (fed.broker_config, *(fed.agent_configs[a] for a in AGENCIES)):
        cfg = yaml.safe_load(path.read_text())
        cfg["auth"]["require_bound_proof"] = require
        path.write_text(yaml.safe_dump(cfg))


async def started(fed: federation.Federation) -> Running:
    run = Running(fed)
    try:
        await run.start_broker()
        for agency in AGENCIES:
            await run.start_agent(agency)
    except BaseException:
        await run.stop()
        raise
    return run


@asynccontextmanager
async def demo_up(tmp_path: Path) -> AsyncIterator[Running]:
    """The demo federation (development tokens bound to mash-client.pem), proofs optional;
    each test module's `run` fixture."""
    running = await started(build_federation(tmp_path / "fed", AGENCIES, background=50))
    try:
        yield running
    finally:
        await running.stop()


def events(broker: Broker, event: str) -> list[dict[str, Any]]:
    """The broker's audit entries of one kind."""
    assert broker.audit is not None
    rows = broker.audit.store.entries(broker.cfg.audit.writer_id, 0, 100_000)
    return [e for e in (json.loads(r.body) for r in rows if r.body) if e["event"] == event]


# -- bound tokens and their keys ------------------------------------------------------------

def bound_token(fed: federation.Federation, key: ClientKey, **kw: Any) -> str:
    """A token bound to the proof key, and (as the demo broker requires) to the client
    certificate."""
    return fed.token(bind_key=key.thumbprint, **kw)


def bind_token_file(fed: federation.Federation) -> tuple[Path, ClientKey]:
    """What `mash login --bind-key` leaves: the bound token in the client config's token file
    and its key beside it (FILE.key)."""
    key = ClientKey.generate()
    token_file = Path(yaml.safe_load(fed.client_config.read_text())["token_file"])
    token_file.write_text(bound_token(fed, key, ttl=dt.timedelta(hours=1)) + "\n")
    (token_file.parent / (token_file.name + ".key")).write_bytes(key.to_pem())
    return token_file, key


def cert_key(fed: federation.Federation, stem: str = "mash-client") -> CertKey:
    return CertKey.from_files(fed.certs / f"{stem}.pem", fed.certs / f"{stem}.key")


def client_certificate(fed: federation.Federation,
                       stem: str = "mash-client") -> device.ClientCertificate:
    return device.ClientCertificate(fed.certs / f"{stem}.pem", fed.certs / f"{stem}.key",
                                    fed.certs / "ca.pem")


def second_client(fed: federation.Federation) -> None:
    """Another analyst client certificate of the same agency (another analyst's machine)."""
    certs.issue(fed.certs, PeerIdentity("client", federation.REQUESTER),
                out_stem="mash-client-2")


def signed(key: BoundKey, token: str, request: lookup_pb2.LookupRequest,
           **kw: Any) -> lookup_pb2.LookupRequest:
    out = lookup_pb2.LookupRequest()
    out.CopyFrom(request)
    out.proof = sign_lookup(key, token=token, subject=request.subject,
                            context=request.context, **kw)
    return out


def forged(genuine: CertKey, *, token: str, method: str, request: bytes) -> str:
    """A proof that names the genuine certificate (x5c) but is signed by another key."""
    thief = ec.generate_private_key(ec.SECP256R1())
    real = jwt.decode(genuine.proof(method=method, target=LOOKUP_TARGET, access_token=token,
                                    request=request), options={"verify_signature": False})
    return jwt.encode(real, thief, algorithm="ES256",
                      headers={"typ": PROOF_TYPE,
                               "x5c": [base64.b64encode(genuine.der).decode()]})


# -- certificate-bound tokens from the real provider ----------------------------------------

@dataclass
class Setup:
    run: Running
    idp: OidcProvider

    @property
    def fed(self) -> federation.Federation:
        return self.run.fed


@asynccontextmanager
async def cert_bound_up(tmp_path: Path, *, require: bool) -> AsyncIterator[Setup]:
    """Broker and agents trusting a provider with mTLS whose tokens are bound to the client
    certificate (the broker requires the binding), with a second analyst certificate;
    `require`: require_bound_proof at the broker and every agent."""
    fed = build_federation(tmp_path / "fed", AGENCIES, background=50)
    second_client(fed)
    idp = OidcProvider.start(tmp_path / "oidc", users=OIDC_USERS,
                             mtls=Mtls.issued(fed.certs, federation.REQUESTER))
    try:
        trust(fed.broker_config, idp, 60, broker=True)
        cfg = yaml.safe_load(fed.broker_config.read_text())
        cfg["auth"]["require_certificate_binding"] = True  # this provider's tokens are bound
        fed.broker_config.write_text(yaml.safe_dump(cfg))
        for agency in AGENCIES:
            trust(fed.agent_configs[agency], idp, 60)
        require_proofs(fed, require)
        run = await started(fed)
        try:
            yield Setup(run, idp)
        finally:
            await run.stop()
    finally:
        idp.stop()


async def cert_bound_token(setup: Setup, stem: str = "mash-client") -> str:
    """An access token the provider bound to the `stem` client certificate (device flow)."""
    tokens = await asyncio.to_thread(device_tokens, setup.idp, "ann",
                                     tls=client_certificate(setup.fed, stem))
    return str(tokens["access_token"])


# -- plain lookups ---------------------------------------------------------------------------

def plain_query(token: str, request: lookup_pb2.LookupRequest, proof: str) -> agent_pb2.Query:
    """The Query a broker would forward to police for this lookup and proof."""
    lookup_id = uuid.uuid4().hex
    return agent_pb2.Query(query_id=f"{lookup_id}-police", lookup_id=lookup_id,
                           analyst_token=token, subject=request.subject,
                           context=request.context, proof=proof)


async def ask(agent: Agent, one: agent_pb2.Query) -> R.AgencyAnswer:
    """Ask the agent directly, as a broker would."""
    return await asyncio.to_thread(agent.handler.answer, one)


def token_rejected(answer: R.AgencyAnswer, words: str) -> None:
    """A request proof refused at the agent: NOT_CHECKED (token rejected), never NOT_KNOWN."""
    assert answer.state == R.ANSWER_STATE_NOT_CHECKED, answer
    assert answer.not_checked_reason == R.NOT_CHECKED_REASON_TOKEN_REJECTED
    assert "refused the analyst's request proof" in answer.detail and words in answer.detail


def answered_known(response: lookup_pb2.LookupResponse) -> None:
    assert {a.agency_id for a in response.answers} == set(AGENCIES)
    assert {a.state for a in response.answers} == {R.ANSWER_STATE_KNOWN}, response


# -- blind lookups ---------------------------------------------------------------------------

def blind_session(fed: federation.Federation, key: BoundKey | None, token: str,
                  request: lookup_pb2.LookupRequest | None = None) -> BlindSession:
    """The analyst's side of a blind lookup, signing both rounds with `key` (None: none)."""
    assert fed.blind_client_config is not None
    blind = ClientConfig.load(fed.blind_client_config, token=fed.token()).blind
    assert blind is not None
    return BlindSession(blind, blind.directory.load(), request or lookup_request(),
                        proof_key=key, token=token)


class Stream:
    """One BlindLookup call, driven step by step as a client (or an attacker) would."""

    def __init__(self, run: Running, token: str) -> None:
        stub = lookup_pb2_grpc.LookupServiceStub(run.analyst(token).channel)
        self.call = stub.BlindLookup(timeout=15,
                                     metadata=(("authorization", f"Bearer {token}"),))

    async def send(self, step: blind_pb2.BlindLookupRequest) -> blind_pb2.BlindLookupResponse:
        await self.call.write(step)
        return await self.call.read()

    async def refused(self, step: blind_pb2.BlindLookupRequest) -> str:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await self.send(step)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, caught.value.details()
        return caught.value.details() or ""


async def whole(run: Running, token: str, blind: BlindSession) -> tuple[
        blind_pb2.BlindLookupRequest, blind_pb2.BlindLookupRequest, lookup_pb2.LookupResponse]:
    """A whole blind lookup: both steps as sent, and the verified answers."""
    stream = Stream(run, token)
    first = blind.first()
    one = (await stream.send(first)).round_one
    second = blind.second(one)
    two = (await stream.send(second)).round_two
    stream.call.cancel()
    return first, second, blind.result(two)


async def replayed_round_two(run: Running, token: str, blind: BlindSession,
                             second: blind_pb2.BlindLookupRequest) -> str:
    """The key's holder signs round one afresh for `blind`'s query (the same request hash,
    answered: the positive control), then the old round two `second` is sent again: the
    broker's refusal."""
    stream = Stream(run, token)
    again = (await stream.send(blind.first())).round_one
    assert {s.agency_id for s in again.answers} == set(AGENCIES)
    return await stream.refused(second)


def blind_refusals_audited(run: Running, count: int) -> None:
    """The broker audited `count` refused blind rounds, each naming its round, none the
    subject."""
    assert run.broker is not None
    refusals = [e["detail"] for e in events(run.broker, "refused")]
    assert len(refusals) == count
    assert all(r.startswith("request proof: round ") for r in refusals), refusals
    assert "Thompson" not in " ".join(refusals)


def states(response: lookup_pb2.LookupResponse) -> dict[str, int]:
    return {a.agency_id: a.state for a in response.answers}


def round_query(blind: BlindSession, token: str, round_: int, proof: str,
                box: blind_pb2.SealedBox | None = None,
                query: blind_pb2.BlindQuery | None = None) -> agent_pb2.Query:
    """The Query a broker would forward for one blind round (round 2: with its box)."""
    lookup_id = uuid.uuid4().hex
    out = agent_pb2.Query(query_id=f"{lookup_id}-{round_}", lookup_id=lookup_id,
                          analyst_token=token, context=blind.query.context,
                          blind=query or blind.query, round=round_, proof=proof)
    if box is not None:
        out.sealed_subject.CopyFrom(box)
    return out


async def blind_answer(agent: Agent, blind: BlindSession,
                       query: agent_pb2.Query) -> tuple[bool, R.AgencyAnswer]:
    """Ask the agent directly, as a broker would, and open its signed, sealed answer."""
    assert agent.blind is not None
    agency = agent.cfg.agency
    reply = await asyncio.to_thread(agent.blind.receive, query)
    assert reply.HasField("sealed_answer"), reply
    opened = blind._open(blind_pb2.SealedAnswer(agency_id=agency, box=reply.sealed_answer),
                         query.round)
    return opened.candidate, opened.answer


def blind_rejected(found: tuple[bool, R.AgencyAnswer], words: str) -> None:
    """A blind round's proof refused at the agent: no candidate, a signed NOT_CHECKED."""
    candidate, answer = found
    assert not candidate
    token_rejected(answer, words)


# -- the command line ------------------------------------------------------------------------

async def mash(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *MASH, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"})
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()
