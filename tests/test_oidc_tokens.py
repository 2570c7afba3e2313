"""Broker, agents and console verify tokens of a real OpenID provider (npm oidc-provider):
discovery, JWKS by kid, rotation without restart, claim mapping, and fail closed."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mash.config import read_model
from mash.errors import IdentityError
from mash.identity.tokens import AuthConfig, TokenVerifier
from tests.oidc_support import OidcProvider, available, device_tokens, free_port

pytestmark = pytest.mark.skipif(bool(available()), reason=available() or "")


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    provider = OidcProvider.start(tmp_path_factory.mktemp("oidc"))
    try:
        yield provider
    finally:
        provider.stop()


def verifier(*issuers: dict[str, Any]) -> TokenVerifier:
    return TokenVerifier.from_config(read_model(AuthConfig, {"issuers": list(issuers)}, "auth",
                                                Path.cwd()))


def forged(issuer: str, *, kid: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": issuer, "sub": "mallory", "aud": "mash-exchange", "iat": now, "nbf": now,
            "exp": now + 300, "jti": uuid.uuid4().hex, "agency": "police", "role": "analyst"}
    body.update(claims)
    return jwt.encode(body, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                      headers={"kid": kid})


def test_device_flow_token_verifies_by_discovery_and_jwks(idp: OidcProvider) -> None:
    analyst = verifier(idp.issuer_config()).verify(device_tokens(idp, "alice")["access_token"])
    assert (analyst.subject, analyst.agency, analyst.role, analyst.team) == (
        "alice", "police", "analyst", "mash-north")
    assert analyst.issuer == idp.issuer
    assert analyst.expires_at < dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)


def test_claim_mapping_turns_a_group_into_a_role(idp: OidcProvider) -> None:
    mapped = verifier(idp.issuer_config(
        claims={"role": "groups"},
        claim_values={"role": {"mash-supervisors": "supervisor", "mash-analysts": "analyst"}}))
    assert mapped.verify(device_tokens(idp, "sam")["access_token"]).role == "supervisor"
    assert mapped.verify(device_tokens(idp, "alice")["access_token"]).role == "analyst"
    # A group the map does not know grants nothing.
    strict = verifier(idp.issuer_config(claims={"role": "groups"},
                                        claim_values={"role": {"mash-leads": "supervisor"}}))
    with pytest.raises(IdentityError, match="'groups' claim has no value the issuer's "
                                            "claim_values map for role knows"):
        strict.verify(device_tokens(idp, "alice")["access_token"])


def test_missing_claim_names_the_claim_to_map(idp: OidcProvider) -> None:
    token = device_tokens(idp, "nora")["access_token"]  # nora's IdP sends no role
    with pytest.raises(IdentityError, match=r"lacks the 'role' claim .*map it in the issuer's "
                                            r"claims \(role: CLAIM\)"):
        verifier(idp.issuer_config()).verify(token)
    other = verifier(idp.issuer_config(claims={"agency": "org"}))
    with pytest.raises(IdentityError, match="lacks the 'org' claim"):
        other.verify(device_tokens(idp, "alice")["access_token"])


def test_rotation_is_picked_up_without_restart(idp: OidcProvider) -> None:
    v = verifier(idp.issuer_config(jwks_cache_seconds=3600, jwks_refetch_cooldown_seconds=0))
    before = device_tokens(idp, "alice")["access_token"]
    assert v.verify(before).subject == "alice"
    new_kid = idp.rotate(drop_old=True)
    after = device_tokens(idp, "alice")["access_token"]
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    # The cached key set lacks the new kid: the verifier fetches the set again, by itself.
    assert v.verify(after).subject == "alice"


def test_unknown_kid_is_refused(idp: OidcProvider) -> None:
    v = verifier(idp.issuer_config())
    assert v.verify(device_tokens(idp, "alice")["access_token"])  # positive control
    with pytest.raises(IdentityError, match=r"signing key \(kid\) is not among .* published "
                                            r"keys \(fetched again on an unknown kid"):
        v.verify(forged(idp.issuer, kid="no-such-kid"))
    # A published kid with a key that is not the provider's does not verify either.
    with pytest.raises(IdentityError, match="signature does not verify"):
        v.verify(forged(idp.issuer, kid=idp.kids()[0]))


def test_wrong_issuer_in_the_discovery_document(idp: OidcProvider) -> None:
    slashed = idp.issuer + "/"
    v = verifier(idp.issuer_config(issuer=slashed))
    with pytest.raises(IdentityError, match=r"names issuer '.*', not '.*/': set the issuer to "
                                            "exactly what the provider says"):
        v.verify(forged(slashed, kid="k"))


def test_unreachable_discovery_fails_closed() -> None:
    issuer = f"http://127.0.0.1:{free_port()}"
    v = verifier({"issuer": issuer, "discovery": True, "agencies": ["police"],
                  "roles": ["analyst"], "fetch_timeout_seconds": 1})
    with pytest.raises(IdentityError, match=r"cannot reach the identity provider's discovery "
                                            r"document .*check the issuer URL"):
        v.verify(forged(issuer, kid="k"))


def test_keys_past_the_cache_life_fail_closed(tmp_path: Path) -> None:
    idp = OidcProvider.start(tmp_path / "oidc")
    try:
        tokens = [device_tokens(idp, "alice")["access_token"] for _ in range(3)]
        v = verifier(idp.issuer_config(jwks_cache_seconds=2))
        assert v.verify(tokens[0]).subject == "alice"
    finally:
        idp.stop()
    # Within the cache's life the cached keys still serve (the provider is down)...
    assert v.verify(tokens[1]).subject == "alice"
    time.sleep(2.2)
    # ...past it, nothing is served stale.
    with pytest.raises(IdentityError, match="cannot be fetched and the cached ones are older "
                                            "than 2 s: refusing its tokens"):
        v.verify(tokens[2])


def test_config_refuses_both_a_pem_and_discovery(tmp_path: Path) -> None:
    from mash.errors import ConfigError

    with pytest.raises(ConfigError, match="either public_key or discovery"):
        verifier({"issuer": "https://idp.example", "discovery": True,
                  "public_key": str(tmp_path / "k.pem"), "agencies": ["police"],
                  "roles": ["analyst"]})
    with pytest.raises(ConfigError, match="claim_values"):
        verifier({"issuer": "https://idp.example", "discovery": True, "agencies": ["police"],
                  "roles": ["analyst"], "claim_values": {"role": ["not", "a", "map"]}})
