"""The console's OpenID client asking the real provider (npm oidc-provider) for access tokens
bound to a per-session proof key (RFC 9449 DPoP, cnf.jkt), at sign-in and at refresh; the
console.yaml switch (oidc.bind_tokens) and what auth.require_bound_proof needs; pasted tokens,
which come without a key. The console's signed lookups end to end:
tests/test_console_bound_lookups.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from fastapi.testclient import TestClient

from mash.console import config as console_config
from mash.console.app import create_app
from mash.console.sessions import COOKIE, SessionStore, UnsignedSession
from mash.errors import ConfigError
from mash.identity.dpop import ClientKey
from mash.identity.tokens import Analyst
from tests.console_support import console_config as write_console_config
from tests.console_support import console_oidc
from tests.helpers import build_federation
from tests.oidc_support import OidcProvider, authorize, available
from tests.test_console_app import csrf_of
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


def oidc_section(tmp_path: Path, **extra: object) -> dict[str, object]:
    return console_oidc(tmp_path, issuer="https://idp.mash.example", redirect_uri=CALLBACK,
                        **extra)


def test_required_proofs_need_the_console_to_bind_its_tokens(tmp_path: Path) -> None:
    """auth.require_bound_proof: every analyst token must be key-bound, which a console
    signing lookups only with the keys it asks the provider to bind means oidc.bind_tokens."""
    fed = build_federation(tmp_path / "fed", ["police"], background=10)
    auth = yaml.safe_load(fed.broker_config.read_text())["auth"]
    required = {**auth, "require_bound_proof": True}
    console_config.load(write_console_config(fed, auth=auth))  # the positive controls
    cfg = console_config.load(write_console_config(
        fed, auth=required, oidc=oidc_section(tmp_path, bind_tokens=True)))
    assert cfg.oidc is not None and cfg.oidc.bind_tokens and cfg.auth.require_bound_proof
    unbound = console_config.load(write_console_config(fed, oidc=oidc_section(tmp_path)))
    assert unbound.oidc is not None and not unbound.oidc.bind_tokens  # off by default
    for oidc in ({}, {"oidc": oidc_section(tmp_path)},
                 {"oidc": oidc_section(tmp_path, bind_tokens=False)}):
        with pytest.raises(ConfigError) as caught:
            console_config.load(write_console_config(fed, auth=required, **oidc))
        assert str(caught.value).endswith(
            "auth: require_bound_proof needs tokens bound to the console's session keys: "
            "set oidc.bind_tokens: true (or drop require_bound_proof)")
        assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="oidc: bind_tokens: expected true or false"):
        console_config.load(write_console_config(
            fed, oidc=oidc_section(tmp_path, bind_tokens="sometimes")))


def test_a_pasted_token_bound_to_a_key_is_refused_not_used_unsigned(tmp_path: Path) -> None:
    """A dev sign-in (pasted token) has no proof key: a key-bound token pasted without its
    key is refused at sign-in, saying so; where proofs are required, any pasted token is.
    A session whose token is bound to a key it does not hold sends no lookup at all."""
    fed = build_federation(tmp_path / "fed", ["police"], background=10)
    app = create_app(console_config.load(write_console_config(fed)))
    web = TestClient(app, base_url="https://testserver", follow_redirects=False)
    key = ClientKey.generate()
    bound = fed.token(bind_key=key.thumbprint)
    refused = paste(web, bound)
    assert refused.status_code == 401
    assert "the token is bound to a proof key (cnf.jkt) this console does not hold, so its " \
        "lookups could not be signed: sign in through the identity provider instead" in \
        refused.text
    assert len(app.state.sessions) == 0
    assert paste(web, fed.token()).status_code == 303  # the positive control: unbound

    # Were such a session there (it cannot be made through sign-in), nothing is sent: no
    # broker runs here, so a lookup sent would say the broker could not be reached.
    web.cookies.clear()
    cfg = app.state.sessions
    analyst = console_config.load(write_console_config(fed)).auth.verify(bound)
    _, cookie = cfg.create(bound, analyst)
    web.cookies.set(COOKIE, cookie)
    page = web.get("/lookup")
    response = web.post("/lookup", data={**LOOKUP, "csrf_token": csrf_of(page.text)})
    assert response.status_code == 401, response.text
    assert "The lookup was not sent: this session&#39;s token is bound to a proof key the " \
        "console does not hold" in response.text
    assert "could not be reached" not in response.text
    assert web.get("/lookup").status_code == 303  # and the session is ended

    auth = yaml.safe_load(fed.broker_config.read_text())["auth"]
    strict = create_app(console_config.load(write_console_config(
        fed, auth={**auth, "require_bound_proof": True},
        oidc=oidc_section(tmp_path, bind_tokens=True))))
    web = TestClient(strict, base_url="https://testserver", follow_redirects=False)
    refused = paste(web, fed.token())
    assert refused.status_code == 401 and "this console requires tokens bound to a proof " \
        "key, which a pasted token cannot be: sign in through the identity provider" in \
        refused.text


LOOKUP = {"name": "Leah Thompson", "dob": "2014-05-17", "purpose": "child_safeguarding",
          "stage": "research", "case": "MASH-1", "reason": "Checking a bound session",
          "urgency": "red"}


def paste(web: TestClient, token: str) -> Any:
    page = web.get("/signin")
    return web.post("/signin", data={"token": token, "csrf_token": csrf_of(page.text)})


def test_a_provider_that_does_not_bind_the_token_fails_the_sign_in(tmp_path: Path) -> None:
    """With oidc.bind_tokens the console never settles for an unbound token: a provider that
    ignores DPoP (a Bearer token, no cnf.jkt) is a refused sign-in saying what to fix."""
    fed = build_federation(tmp_path / "fed", ["police"], background=10)
    for dpop in (True, False):  # the positive control first: the same console, DPoP on
        idp = OidcProvider.start(tmp_path / f"oidc-{dpop}", users=USERS, dpop=dpop,
                                 console_redirect=CALLBACK)
        try:
            section = {**oidc_section(tmp_path, bind_tokens=True), "issuer": idp.issuer}
            path = write_console_config(fed, dev_token_signin=False, oidc=section)
            cfg = yaml.safe_load(path.read_text())
            cfg["auth"]["issuers"].append(idp.issuer_config(agencies=["mash"]))
            path.write_text(yaml.safe_dump(cfg))
            app = create_app(console_config.load(path))
            web = TestClient(app, base_url="https://testserver", follow_redirects=False)
            start = web.get("/signin/oidc")
            back = authorize(start.headers["location"], "ann", CALLBACK)
            landed = web.get(back.removeprefix("https://testserver"))
            if dpop:
                assert landed.status_code == 200 and "url=/lookup" in landed.text
                (session,) = app.state.sessions._sessions.values()
                key = session.proof_key()
                assert key is not None and jkt(session.token) == key.thumbprint
                continue
            assert landed.status_code == 401
            assert "Sign-in refused: the identity provider did not bind the access token to " \
                "the console&#39;s proof key (no cnf.jkt for it): enable DPoP for the " \
                "console&#39;s client at the provider" in landed.text
            assert len(app.state.sessions) == 0
        finally:
            idp.stop()


def test_a_session_signs_only_with_the_key_its_token_is_bound_to() -> None:
    now = dt.datetime.now(dt.UTC)
    key, other = ClientKey.generate(), ClientKey.generate()
    ann = Analyst("ann", "mash", "analyst", "mash-1", "idp", "t-1", now + dt.timedelta(hours=1),
                  key_thumbprint=key.thumbprint)
    store = SessionStore(b"s" * 32, dt.timedelta(hours=1))
    session, _ = store.create("access", ann, proof_key=key)
    signing = session.signing_key()
    assert signing is not None and signing.thumbprint == key.thumbprint  # the control
    assert key.to_pem().decode() not in repr(session)
    session.proof_key_pem = other.to_pem().decode()
    with pytest.raises(UnsignedSession, match="bound to another proof key than the session"):
        session.signing_key()
    session.proof_key_pem = "not a key"
    with pytest.raises(UnsignedSession, match="proof key cannot be read: sign in again"):
        session.signing_key()
    unbound, _ = store.create("access", dataclasses.replace(ann, key_thumbprint=""))
    assert unbound.signing_key() is None  # an unbound token: nothing to sign with
