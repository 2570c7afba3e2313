"""Requests bound to the analyst's key (RFC 9449 DPoP style), with tokens from a real
oidc-provider (npm) that binds them to the key (cnf.jkt): the key's holder proves each
request; a copied token, a replayed or altered request, a stale proof are each refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mash.errors import IdentityError
from mash.identity.dpop import ClientKey, ProofVerifier, ReplayCache
from tests.oidc_support import OidcProvider, available, device_tokens
from tests.test_oidc_tokens import verifier

pytestmark = pytest.mark.skipif(bool(available()), reason=available() or "")
METHOD, TARGET = "Lookup", "mash:broker"
REQUEST = b"lookup-id=L1;subject=...;purpose=s47"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    provider = OidcProvider.start(tmp_path_factory.mktemp("oidc"))
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture(scope="module")
def bound(idp: OidcProvider) -> tuple[ClientKey, str, str]:
    key = ClientKey.generate()
    token = device_tokens(idp, "alice", proof_key=key)["access_token"]
    analyst = verifier(idp.issuer_config()).verify(token)
    return key, token, analyst.key_thumbprint


def check(proofs: ProofVerifier, proof: str, jkt: str, token: str, *,
          request: bytes = REQUEST, method: str = METHOD) -> None:
    proofs.verify(proof, key_thumbprint=jkt, method=method, target=TARGET,
                  access_token=token, request=request)


def test_the_provider_binds_the_token_to_the_key(bound: tuple[ClientKey, str, str],
                                                 idp: OidcProvider) -> None:
    key, token, jkt = bound
    assert jkt == key.thumbprint
    unbound = verifier(idp.issuer_config()).verify(device_tokens(idp, "alice")["access_token"])
    assert unbound.key_thumbprint == ""
    with pytest.raises(IdentityError, match=r"not bound to a key \(no cnf.jkt\)"):
        check(ProofVerifier(), key.proof(method=METHOD, target=TARGET, access_token=token,
                                         request=REQUEST), "", token)


def test_proof_accepted_once_then_refused_as_a_replay(
        bound: tuple[ClientKey, str, str]) -> None:
    key, token, jkt = bound
    proofs = ProofVerifier()
    proof = key.proof(method=METHOD, target=TARGET, access_token=token, request=REQUEST)
    check(proofs, proof, jkt, token)  # the positive control
    with pytest.raises(IdentityError, match="used before: a replayed request"):
        check(proofs, proof, jkt, token)
    # A fresh proof for the same request is fine (a retry by the key's holder).
    check(proofs, key.proof(method=METHOD, target=TARGET, access_token=token,
                            request=REQUEST), jkt, token)


def test_a_copied_token_cannot_make_a_proof(bound: tuple[ClientKey, str, str]) -> None:
    _, token, jkt = bound
    thief = ClientKey.generate()
    forged = thief.proof(method=METHOD, target=TARGET, access_token=token, request=REQUEST)
    with pytest.raises(IdentityError, match="signed by a key other than the one the analyst "
                                            "token is bound to: a copied token"):
        check(ProofVerifier(), forged, jkt, token)
    with pytest.raises(IdentityError, match="no request proof"):
        check(ProofVerifier(), "", jkt, token)


def test_a_proof_binds_request_token_method_and_time(
        bound: tuple[ClientKey, str, str]) -> None:
    key, token, jkt = bound
    proofs = ProofVerifier(max_skew_seconds=30)
    proof = key.proof(method=METHOD, target=TARGET, access_token=token, request=REQUEST)
    with pytest.raises(IdentityError, match="for another request: the lookup was altered"):
        check(proofs, proof, jkt, token, request=REQUEST + b";other-subject")
    with pytest.raises(IdentityError, match="for another call"):
        check(proofs, proof, jkt, token, method="ListAgents")
    with pytest.raises(IdentityError, match="for another analyst token"):
        check(proofs, proof, jkt, token + "x")
    stale = key.proof(method=METHOD, target=TARGET, access_token=token, request=REQUEST,
                      now=time.time() - 31)
    with pytest.raises(IdentityError, match="made more than 30 s from now"):
        check(proofs, stale, jkt, token)
    check(proofs, proof, jkt, token)  # the refusals did not use the genuine proof up


def test_replay_cache_forgets_after_the_window_and_fails_closed_when_full() -> None:
    now = [0.0]
    cache = ReplayCache(10, max_entries=2, clock=lambda: now[0])
    cache.use("a")
    cache.use("b")
    with pytest.raises(IdentityError, match="too many request proofs"):
        cache.use("c")
    now[0] = 11
    cache.use("c")  # a and b lapsed
    cache.use("a")
    with pytest.raises(IdentityError, match="used before"):
        cache.use("a")


def test_key_round_trips_through_pem(tmp_path: Path) -> None:
    key = ClientKey.generate()
    again = ClientKey.from_pem(key.to_pem())
    assert again.thumbprint == key.thumbprint
    with pytest.raises(IdentityError, match="not a readable PEM private key"):
        ClientKey.from_pem(b"not a key")


def test_lookup_proof_covers_subject_and_context_as_forwarded(
        bound: tuple[ClientKey, str, str], idp: OidcProvider) -> None:
    from mash.identity.request_binding import (
        LOOKUP_METHOD,
        LOOKUP_TARGET,
        check_lookup_proof,
        lookup_bytes,
    )
    from mash.v1 import subject_pb2

    key, token, _ = bound
    analyst = verifier(idp.issuer_config()).verify(token)
    subject = subject_pb2.Subject(name=subject_pb2.PersonName(given="Ann", family="Smith"),
                                  date_of_birth=subject_pb2.Date(year=2015, month=3, day=1))
    context = subject_pb2.RequestContext(purpose="s47", stage="strategy",
                                         case_reference="C-1", urgency=subject_pb2.URGENCY_RED)
    proof = key.proof(method=LOOKUP_METHOD, target=LOOKUP_TARGET, access_token=token,
                      request=lookup_bytes(subject, context))
    # The agent sees the subject and context after the broker parsed and re-serialised them.
    forwarded = subject_pb2.Subject.FromString(subject.SerializeToString())
    forwarded_context = subject_pb2.RequestContext.FromString(context.SerializeToString())
    proofs = ProofVerifier()
    check_lookup_proof(proofs, analyst=analyst, token=token, proof=proof, subject=forwarded,
                       context=forwarded_context)  # the positive control
    # A broker (or anyone holding the token) asking about another child with the same proof:
    other = subject_pb2.Subject()
    other.CopyFrom(forwarded)
    other.name.family = "Jones"
    with pytest.raises(IdentityError, match="for another request"):
        check_lookup_proof(ProofVerifier(), analyst=analyst, token=token, proof=proof,
                           subject=other, context=forwarded_context)
    with pytest.raises(IdentityError, match="used before"):
        check_lookup_proof(proofs, analyst=analyst, token=token, proof=proof,
                           subject=forwarded, context=forwarded_context)
    # Unbound tokens pass unless proofs are required, then are refused saying how to fix.
    unbound_token = device_tokens(idp, "alice")["access_token"]
    unbound = verifier(idp.issuer_config()).verify(unbound_token)
    check_lookup_proof(proofs, analyst=unbound, token=unbound_token, proof="",
                       subject=forwarded, context=forwarded_context)
    with pytest.raises(IdentityError, match=r"must be bound to a proof key .*--bind-key"):
        check_lookup_proof(proofs, analyst=unbound, token=unbound_token, proof="",
                           subject=forwarded, context=forwarded_context, require=True)
