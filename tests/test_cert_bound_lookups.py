"""Certificate-bound lookups (RFC 8705 cnf.x5t#S256), end to end: tokens from the real npm
oidc-provider's mTLS endpoints (`mash login --bind-cert`), a real broker and real agents on
loopback with mTLS. Each lookup is signed with the client certificate's key (a
mash-cert-proof+jwt carrying the certificate in x5c); the broker checks the connection's
certificate against the token and the proof, and every agent checks the proof again with its
own replay cache. Each refusal has its positive control, and no refusal is NOT_KNOWN."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
import yaml

from mash import rpc_errors
from mash.demo import federation
from mash.identity import certs, device
from mash.identity.cert_binding import PROOF_TYPE, CertKey
from mash.identity.dpop import ClientKey
from mash.identity.names import PeerIdentity
from mash.identity.request_binding import LOOKUP_METHOD, lookup_bytes
from mash.v1 import answer_pb2 as R
from mash.v1 import lookup_pb2
from tests.helpers import Running, build_federation, client_tls, lookup_request
from tests.oidc_support import MTLS_CLIENT, OidcProvider, approve_device, device_tokens
from tests.proof_support import (
    AGENCIES,
    LEAH,
    MASH,
    Setup,
    answered_known,
    ask,
    cert_bound_token,
    cert_bound_up,
    cert_key,
    forged,
    mash,
    needs_idp,
    plain_query,
    signed,
    token_rejected,
)


@pytest.fixture
async def required(tmp_path: Path) -> AsyncIterator[Setup]:
    """Broker and agents with require_bound_proof, trusting a provider with mTLS."""
    async with cert_bound_up(tmp_path, require=True) as setup:
        yield setup


async def refused(run: Running, token: str, request: lookup_pb2.LookupRequest, *,
                  stem: str = "mash-client") -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await run.analyst(token, tls=client_tls(run.fed, stem)).lookup(request)
    error = caught.value
    return error.code(), rpc_errors.details_of(error).reason, error.details() or ""


def forged_lookup(genuine: CertKey, token: str, request: lookup_pb2.LookupRequest) -> str:
    return forged(genuine, token=token, method=LOOKUP_METHOD,
                  request=lookup_bytes(request.subject, request.context))


@needs_idp
async def test_the_providers_mtls_token_is_bound_and_signed_lookups_are_answered(
        required: Setup) -> None:
    fed, run = required.fed, required.run
    token = await cert_bound_token(required)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["cnf"] == {"x5t#S256": cert_key(fed).thumbprint}
    assert claims["client_id"] == MTLS_CLIENT
    key = cert_key(fed)
    answered_known(await run.analyst(token).lookup(signed(key, token, lookup_request())))
    # the proof is short enough for every hop, and carries the certificate, not the key
    proof = signed(key, token, lookup_request()).proof
    header = jwt.get_unverified_header(proof)
    assert header["typ"] == PROOF_TYPE and "jwk" not in header and len(header["x5c"]) == 1


@needs_idp
async def test_the_broker_refuses_another_certificate_a_missing_replayed_or_foreign_proof(
        required: Setup) -> None:
    run, fed = required.run, required.fed
    token = await cert_bound_token(required)
    key, other = cert_key(fed), cert_key(fed, "mash-client-2")
    request = lookup_request()
    good = signed(key, token, request)
    answered_known(await run.analyst(token).lookup(good))  # the positive control

    # the token (and a fresh proof by its certificate) over another client certificate
    for proof_key in (other, key):
        code, reason, words = await refused(run, token, signed(proof_key, token, request),
                                            stem="mash-client-2")
        assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_BINDING_REFUSED")
        assert "bound to another client certificate" in words and "--bind-cert" in words
    # the other certificate's own token, signed with its key, is answered over it (the
    # control: the connection is fine, the token is not for it)
    own = str((await asyncio.to_thread(
        device_tokens, required.idp, "ann", tls=device.ClientCertificate(
            fed.certs / "mash-client-2.pem", fed.certs / "mash-client-2.key",
            fed.certs / "ca.pem")))["access_token"])
    answered_known(await run.analyst(own, tls=client_tls(fed, "mash-client-2")).lookup(
        signed(other, own, request)))
    code, reason, words = await refused(run, token, request)
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "PROOF_REFUSED")
    assert "no request proof" in words and "require_bound_proof" in words
    code, reason, words = await refused(run, token, good)
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "PROOF_REFUSED")
    assert "used before: a replayed request" in words
    code, reason, words = await refused(run, token, signed(other, token, request))
    assert reason == "PROOF_REFUSED"
    assert "signed with a certificate other than the one the analyst token is bound to" in words
    bad = lookup_pb2.LookupRequest()
    bad.CopyFrom(request)
    bad.proof = forged_lookup(key, token, request)
    code, reason, words = await refused(run, token, bad)
    assert reason == "PROOF_REFUSED" and "signature does not verify" in words
    # a proof by the key the token is bound to, after all those refusals, is answered
    answered_known(await run.analyst(token).lookup(signed(key, token, request)))


@needs_idp
async def test_agents_refuse_what_the_broker_could_forward_without_the_certificate_key(
        required: Setup) -> None:
    """The agent driven directly, as a broker would: its own checks, its own replay cache."""
    run, fed = required.run, required.fed
    token = await cert_bound_token(required)
    key, other = cert_key(fed), cert_key(fed, "mash-client-2")
    request = lookup_request()
    police = run.agents["police"]

    async def says(proof: str, asked: lookup_pb2.LookupRequest = request) -> R.AgencyAnswer:
        return await ask(police, plain_query(token, asked, proof))

    proof = signed(key, token, request).proof
    answer = await says(proof)  # the positive control
    assert answer.state == R.ANSWER_STATE_KNOWN, answer.detail
    token_rejected(await says(proof), "used before")
    token_rejected(await says(""), "no request proof")
    token_rejected(await says(signed(other, token, request).proof),
                   "signed with a certificate other than the one the analyst token is bound to")
    token_rejected(await says(forged_lookup(key, token, request)), "signature does not verify")
    altered = lookup_request(name="Ava Thompson")  # a broker asking about another child
    token_rejected(await says(signed(key, token, request).proof, altered),
                   "for another request")
    # a proof the broker forwarded with a lookup it routed: the agent refuses it again
    forwarded = signed(key, token, request)
    answered_known(await run.analyst(token).lookup(forwarded))
    token_rejected(await says(forwarded.proof), "used before")
    fresh = await says(signed(key, token, request).proof)
    assert fresh.state == R.ANSWER_STATE_KNOWN  # and a fresh one still passes


def demo_issue(fed: federation.Federation, stem: str, agency: str = federation.REQUESTER,
               **kw: Any) -> None:
    certs.issue(fed.certs, PeerIdentity("client", agency), out_stem=stem, **kw)


async def test_agents_check_the_proofs_certificate_and_refuse_unknown_bindings(
        tmp_path: Path) -> None:
    """Development tokens (the demo issuer) bound to certificates the provider would not
    bind to: expired, of another CA, of another agency; and a cnf this service does not
    know. Proofs optional here (require_bound_proof off): an unsigned cert-bound token is
    answered as before, a proof that is there must hold."""
    fed = build_federation(tmp_path / "fed", AGENCIES, background=50)
    demo_issue(fed, "expired-client", not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=3),
               days=1)
    demo_issue(fed, "police-client", agency="police")
    rogue = tmp_path / "rogue-ca"
    rogue.mkdir()
    certs.create_ca(rogue)
    certs.issue(rogue, PeerIdentity("client", federation.REQUESTER), out_stem="rogue-client")
    for suffix in ("pem", "key"):
        (fed.certs / f"rogue-client.{suffix}").write_bytes(
            (rogue / f"rogue-client.{suffix}").read_bytes())
    async with Running.up(fed, AGENCIES) as run:
        police = run.agents["police"]
        request = lookup_request()
        token = fed.token()  # bound to mash-client.pem
        key = cert_key(fed)
        # without require_bound_proof: unsigned is answered (the broker checked the TLS
        # certificate), signed is answered, a bad proof is refused
        answered_known(await run.analyst(token).lookup(request))
        answered_known(await run.analyst(token).lookup(signed(key, token, request)))
        code, reason, _ = await refused(run, token, signed(cert_key(fed, "expired-client"),
                                                           token, request))
        assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "PROOF_REFUSED")
        assert (await ask(police, plain_query(token, request, ""))).state == R.ANSWER_STATE_KNOWN

        for stem, words in (("expired-client", "not valid now"),
                            ("rogue-client", "not issued by the federation CA"),
                            ("police-client", "not an analyst client certificate of agency")):
            bound = fed.token(bind=stem)
            proof = signed(cert_key(fed, stem), bound, request).proof
            token_rejected(await ask(police, plain_query(bound, request, proof)), words)
        good = await ask(police, plain_query(token, request, signed(key, token, request).proof))
        assert good.state == R.ANSWER_STATE_KNOWN  # the control

        thumb = key.thumbprint
        for cnf, state in (({"x5t#S256": thumb}, R.ANSWER_STATE_KNOWN),
                           ({"x5t#S256": thumb, "x5t": "sha1-thumbprint"},
                            R.ANSWER_STATE_NOT_CHECKED),
                           ({"x5t#S256": thumb, "kid": "k1"}, R.ANSWER_STATE_NOT_CHECKED)):
            odd = fed.token(bind=None, extra={"cnf": cnf})
            answer = await ask(police, plain_query(odd, request, signed(key, odd, request).proof))
            assert answer.state == state, answer.detail
            if state == R.ANSWER_STATE_NOT_CHECKED:
                assert answer.not_checked_reason == R.NOT_CHECKED_REASON_TOKEN_REJECTED
                assert "bound in a way this service does not know" in answer.detail
                code, reason, words = await refused(run, odd, request)
                assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED,
                                          "UNAUTHENTICATED_TOKEN")
                assert "does not know" in words


def mash_login(idp: OidcProvider, token_file: Path, *extra: str,
               user: str = "ann") -> tuple[int, str]:
    """`mash login` as an analyst runs it, the user approving at the provider."""
    proc = subprocess.Popen([*MASH, "login", "--issuer", idp.issuer, "--token-file",
                             str(token_file), *extra], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    first = proc.stderr.readline()
    found = re.search(r"open (\S+) and enter the code (\S+)", first)
    if not found:
        _, err = proc.communicate(timeout=60)
        return proc.returncode, first + err
    approve_device(found.group(1), found.group(2), user)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, first + err


@needs_idp
async def test_mash_login_bind_cert_then_mash_lookup_signs_with_the_certificate(
        required: Setup, tmp_path: Path) -> None:
    fed, idp = required.fed, required.idp
    token_file = Path(yaml.safe_load(fed.client_config.read_text())["token_file"])
    tls = ["--cert", str(fed.certs / "mash-client.pem"), "--key",
           str(fed.certs / "mash-client.key"), "--idp-ca", str(fed.certs / "ca.pem")]
    code, err = await asyncio.to_thread(mash_login, idp, token_file, "--bind-cert",
                                        "--client-id", MTLS_CLIENT, *tls)
    assert code == 0, err
    token = token_file.read_text().strip()
    thumb = cert_key(fed).thumbprint
    assert jwt.decode(token, options={"verify_signature": False})["cnf"] == {"x5t#S256": thumb}
    side = json.loads(device.refresh_path(token_file).read_text())
    assert side["mtls"]["cert"] == str((fed.certs / "mash-client.pem").resolve())

    config = str(fed.client_config)
    code, out, err = await mash("lookup", *LEAH, "--config", config)
    assert code == 0, err  # signed with the certificate's key, where proofs are required
    assert "KNOWN" in out and "NOT CHECKED" not in out
    code, _, err = await mash("lookup", *LEAH, "--config", config, "--token", token)
    assert code == 0, err  # --token too: the key is the client config's tls.key

    # refreshed at the mTLS token endpoint, with the certificate: bound again
    claims = jwt.decode(token, options={"verify_signature": False})
    token_file.write_text(jwt.encode({**claims, "exp": 1}, "k" * 32, algorithm="HS256") + "\n")
    renewed = await asyncio.to_thread(device.fresh_token, token_file)
    assert jwt.decode(renewed, options={"verify_signature": False})["cnf"] == {
        "x5t#S256": thumb}
    code, out, err = await mash("lookup", *LEAH, "--config", config)
    assert code == 0 and "NOT CHECKED" not in out, err

    # the client that does not bind tokens, over the same endpoints: refused, nothing kept
    plain = tmp_path / "plain.jwt"
    code, err = await asyncio.to_thread(mash_login, idp, plain, "--bind-cert", *tls)
    assert code != 0 and "did not bind the token to your client certificate" in err, err
    assert not plain.exists() and "Traceback" not in err
    code, err = await asyncio.to_thread(mash_login, idp, plain, "--bind-cert")
    assert code == 2 and "--bind-cert needs --cert and --key" in err
    assert err.strip().count("\n") == 0
    code, err = await asyncio.to_thread(mash_login, idp, plain, "--bind-cert", "--bind-key",
                                        *tls)
    assert code == 2 and "not both" in err


@needs_idp
def test_login_bind_cert_at_a_provider_without_mtls_is_one_line(tmp_path: Path) -> None:
    idp = OidcProvider.start(tmp_path / "oidc")
    try:
        ca = tmp_path / "ca"
        ca.mkdir()
        certs.create_ca(ca)
        paths = certs.issue(ca, PeerIdentity("client", "mash"))
        code, err = mash_login(idp, tmp_path / "t.jwt", "--bind-cert", "--cert",
                               str(paths.cert), "--key", str(paths.key))
        assert code != 0 and err.strip().count("\n") == 0, err
        assert "does not issue certificate-bound tokens" in err and "--bind-key" in err
        wrong = tmp_path / "not-the-key.pem"
        wrong.write_bytes(ClientKey.generate().to_pem())
        code, err = mash_login(idp, tmp_path / "t.jwt", "--bind-cert", "--cert",
                               str(paths.cert), "--key", str(wrong))
        assert code != 0 and "the client key is not the client certificate's" in err
        assert not (tmp_path / "t.jwt").exists()
    finally:
        idp.stop()
