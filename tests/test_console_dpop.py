"""The console's OpenID client asking the real provider (npm oidc-provider) for access tokens
bound to a per-session proof key (RFC 9449 DPoP, cnf.jkt), at sign-in and at refresh."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import yaml

from mash.console import config as console_config
from mash.errors import ConfigError
from mash.identity.dpop import ClientKey
from tests.console_support import console_config as write_console_config
from tests.helpers import build_federation
from tests.oidc_support import OidcProvider, authorize, available
from tests.test_console_oidc_flow import CALLBACK, USERS, client_for, code_of

pytestmark = pytest.mark.skipif(bool(available()), reason=available() or "")


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[OidcProvider]:
    provider = OidcProvider.start(tmp_path / "oidc", users=USERS, console_redirect=CALLBACK)
    try:
        yield provider
    finally:
        provider.stop()


def jkt(token: str) -> object:
    return jwt.decode(token, options={"verify_signature": False}).get("cnf", {}).get("jkt")


def test_sign_in_and_refresh_bind_the_token_to_the_sessions_key(idp: OidcProvider) -> None:
    oidc = client_for(idp)
    state, url = oidc.begin()
    back = code_of(authorize(url, "ann", CALLBACK))
    plain = oidc.finish(state=back["state"], browser_state=state, code=back["code"])
    assert jkt(plain.access_token) is None  # the control: no key, no binding

    key = ClientKey.generate()
    state, url = oidc.begin()
    back = code_of(authorize(url, "ann", CALLBACK))
    tokens = oidc.finish(state=back["state"], browser_state=state, code=back["code"],
                         proof_key=key)
    assert jkt(tokens.access_token) == key.thumbprint
    renewed = oidc.refresh(tokens.refresh_token, proof_key=key)
    assert jkt(renewed.access_token) == key.thumbprint
    assert renewed.access_token != tokens.access_token


def test_the_console_refuses_to_start_where_proofs_are_required(tmp_path: Path) -> None:
    """It cannot sign lookups yet: a federation that requires proofs learns so at start."""
    fed = build_federation(tmp_path / "fed", ["police"], background=10)
    auth = yaml.safe_load(fed.broker_config.read_text())["auth"]
    console_config.load(write_console_config(fed, auth=auth))  # the positive control
    with pytest.raises(ConfigError, match="auth: require_bound_proof is for the broker and "
                                          "agents: the console does not sign lookups"):
        console_config.load(write_console_config(fed, auth={**auth,
                                                            "require_bound_proof": True}))
