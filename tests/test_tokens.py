"""Analyst tokens: every way a token can be wrong is refused with a reason."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from mash.errors import IdentityError
from mash.identity.tokens import TokenVerifier, TrustedIssuer, generate_issuer_key, issue_token

ISSUER = "https://idp.test"


@pytest.fixture(params=["ES256", "EdDSA"])
def keys(request):
    private, public = generate_issuer_key(request.param)
    return private, serialization.load_pem_public_key(public), request.param


@pytest.fixture
def verifier(keys) -> TokenVerifier:
    return TokenVerifier([TrustedIssuer(ISSUER, keys[1], frozenset({"mash"}),
                                        frozenset({"analyst", "supervisor"}))])


def token(keys, **kw) -> str:
    args = dict(issuer=ISSUER, subject="a.analyst", agency="mash", role="analyst", team="A")
    args.update(kw)
    return issue_token(keys[0], **args)


def test_a_good_token_names_the_analyst(keys, verifier) -> None:
    analyst = verifier.verify(token(keys))
    assert (analyst.subject, analyst.agency, analyst.role, analyst.team) == (
        "a.analyst", "mash", "analyst", "A")
    assert analyst.expires_at > dt.datetime.now(dt.UTC)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(ttl=dt.timedelta(hours=-1)), "expired"),
        (dict(audience="someone-else"), "wrong audience"),
        (dict(issuer="https://evil.example"), "does not trust"),
        (dict(role="admin"), "role its issuer may not grant"),
        (dict(agency="police"), "agency its issuer may not vouch for"),
        (dict(ttl=dt.timedelta(days=3)), "longer than this service allows"),
        (dict(now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)), "not valid yet"),
    ],
)
def test_bad_claims_are_refused(keys, verifier, kw, message) -> None:
    with pytest.raises(IdentityError, match=message):
        verifier.verify(token(keys, **kw))


def test_a_token_signed_by_another_key_is_forged(keys, verifier) -> None:
    other = generate_issuer_key(keys[2])[0]  # same algorithm, different key
    forged = issue_token(other, issuer=ISSUER, subject="a.analyst", agency="mash",
                         role="analyst")
    with pytest.raises(IdentityError, match="forged"):
        verifier.verify(forged)


def test_tampered_claims_break_the_signature(keys, verifier) -> None:
    genuine = token(keys)
    header, _, signature = genuine.split(".")
    claims = jwt.decode(genuine, options={"verify_signature": False})
    claims["role"] = "supervisor"
    forged_payload = jwt.utils.base64url_encode(
        jwt.api_jws.json.dumps(claims).encode()).decode()
    with pytest.raises(IdentityError, match=r"forged|invalid|algorithm"):
        verifier.verify(f"{header}.{forged_payload}.{signature}")


def test_hmac_with_the_public_key_as_secret_is_refused(keys, verifier) -> None:
    claims = jwt.decode(token(keys), options={"verify_signature": False})
    public_pem = keys[1].public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    confused = jwt.api_jws.PyJWS().encode(
        jwt.api_jws.json.dumps(claims).encode(), key=public_pem.decode()[:40], algorithm="HS256")
    with pytest.raises(IdentityError, match="algorithm"):
        verifier.verify(confused)


def test_unsigned_token_is_refused(keys, verifier) -> None:
    claims = jwt.decode(token(keys), options={"verify_signature": False})
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    with pytest.raises(IdentityError):
        verifier.verify(unsigned)


@pytest.mark.parametrize("raw", ["", "not-a-jwt", "a.b.c", "x" * 10000])
def test_garbage_is_refused(verifier, raw) -> None:
    with pytest.raises(IdentityError):
        verifier.verify(raw)


def test_missing_claims_are_refused(keys, verifier) -> None:
    key = serialization.load_pem_private_key(keys[0], None)
    alg = keys[2]
    now = int(dt.datetime.now(dt.UTC).timestamp())
    bare = jwt.encode({"iss": ISSUER, "aud": "mash-exchange", "exp": now + 60, "iat": now,
                       "agency": "mash", "role": "analyst"}, key, algorithm=alg)
    with pytest.raises(IdentityError, match="lacks"):
        verifier.verify(bare)


def test_issuer_config_needs_a_real_public_key(tmp_path: Path) -> None:
    from mash.config import read_model
    from mash.errors import ConfigError
    from mash.identity.tokens import AuthConfig

    bad = tmp_path / "bad.pub"
    bad.write_text("not a key")
    section = read_model(AuthConfig, {"issuers": [{"issuer": ISSUER, "public_key": str(bad),
                                                   "agencies": ["mash"], "roles": ["analyst"]}]},
                         "auth", tmp_path)
    with pytest.raises(ConfigError, match=r"bad\.pub: not a PEM public key"):
        TokenVerifier.from_config(section)
    # a real key of the wrong kind is named as such; a P-256 key is taken (positive control)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    def public_pem(key: Any) -> bytes:
        return key.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    for key, problem in ((rsa.generate_private_key(public_exponent=65537, key_size=2048),
                          "must be P-256"), (ec.generate_private_key(ec.SECP384R1()),
                                             "must be P-256"),
                         (ec.generate_private_key(ec.SECP256R1()), None)):
        bad.write_bytes(public_pem(key))
        section = read_model(AuthConfig, {"issuers": [{
            "issuer": ISSUER, "public_key": str(bad), "agencies": ["mash"],
            "roles": ["analyst"]}]}, "auth", tmp_path)
        if problem is None:
            assert TokenVerifier.from_config(section)
        else:
            with pytest.raises(ConfigError, match=problem):
                TokenVerifier.from_config(section)
