"""The console's OpenID client against a real provider (npm oidc-provider), without a
browser: state and nonce checks, one use per sign-in, refresh before expiry, and sign-out
revoking the refresh token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from fastapi.testclient import TestClient

from mash.console import config as console_config
from mash.console.app import create_app
from mash.console.oidc import OidcClient, OidcConfig
from mash.errors import IdentityError
from tests.console_support import console_config as write_console_config
from tests.console_support import console_oidc
from tests.helpers import build_federation
from tests.oidc_support import CONSOLE_CLIENT, CONSOLE_SECRET, OidcProvider, authorize, available

pytestmark = pytest.mark.skipif(bool(available()), reason=available() or "")
CALLBACK = "https://testserver/signin/callback"
USERS = {"ann": {"claims": {"agency": "mash", "role": "analyst", "team": "MASH Team A"}}}


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[OidcProvider]:
    provider = OidcProvider.start(tmp_path / "oidc", users=USERS, access_token_ttl=45,
                                  console_redirect=CALLBACK,
                                  console_logout_redirect="https://testserver/signin")
    try:
        yield provider
    finally:
        provider.stop()


def client_for(idp: OidcProvider) -> OidcClient:
    return OidcClient(OidcConfig(issuer=idp.issuer, client_id=CONSOLE_CLIENT,
                                 client_secret=CONSOLE_SECRET, redirect_uri=CALLBACK,
                                 post_logout_redirect_uri="", scope="openid offline_access "
                                                                    "lookup"))


def code_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_state_nonce_and_one_use(idp: OidcProvider) -> None:
    oidc = client_for(idp)
    state, url = oidc.begin()
    back = code_of(authorize(url, "ann", CALLBACK))
    assert back["state"] == state
    with pytest.raises(IdentityError, match="did not start in this browser"):
        oidc.finish(state=back["state"], browser_state="another", code=back["code"])
    state, url = oidc.begin()
    back = code_of(authorize(url, "ann", CALLBACK))
    tokens = oidc.finish(state=back["state"], browser_state=state, code=back["code"])
    assert tokens.access_token and tokens.refresh_token and tokens.id_token
    with pytest.raises(IdentityError, match="already used"):
        oidc.finish(state=back["state"], browser_state=state, code=back["code"])
    with pytest.raises(IdentityError, match="nonce is not this sign-in's"):
        oidc._check_id_token(tokens.id_token, nonce="another")
    # Refresh tokens rotate; one revoked at the provider no longer works.
    fresh = oidc.refresh(tokens.refresh_token)  # the positive control
    assert fresh.access_token and fresh.refresh_token != tokens.refresh_token
    oidc.revoke(fresh.refresh_token)
    with pytest.raises(IdentityError, match="refused the sign-in"):
        oidc.refresh(fresh.refresh_token)


def test_wrong_issuer_and_unreachable_provider(idp: OidcProvider) -> None:
    wrong = OidcClient(OidcConfig(issuer=idp.issuer + "/", client_id=CONSOLE_CLIENT,
                                  client_secret=CONSOLE_SECRET, redirect_uri=CALLBACK,
                                  post_logout_redirect_uri="", scope="openid"))
    with pytest.raises(IdentityError, match=r"set oidc\.issuer to exactly that"):
        wrong.begin()
    down = OidcClient(OidcConfig(issuer="http://127.0.0.1:9", client_id=CONSOLE_CLIENT,
                                 client_secret="x", redirect_uri=CALLBACK,
                                 post_logout_redirect_uri="", scope="openid"), timeout=2)
    with pytest.raises(IdentityError, match="cannot reach the identity provider's discovery"):
        down.begin()


def test_console_refreshes_before_expiry_and_revokes_at_sign_out(idp: OidcProvider,
                                                                  tmp_path: Path) -> None:
    fed = build_federation(tmp_path / "fed", agencies=["police"], background=5)
    path = write_console_config(fed, dev_token_signin=False, oidc=console_oidc(
        tmp_path, issuer=idp.issuer, redirect_uri=CALLBACK))
    cfg = yaml.safe_load(path.read_text())
    cfg["auth"]["issuers"].append(idp.issuer_config(agencies=["mash"]))
    path.write_text(yaml.safe_dump(cfg))
    app = create_app(console_config.load(path))
    web = TestClient(app, base_url="https://testserver", follow_redirects=False)
    start = web.get("/signin/oidc")
    assert start.status_code == 303
    back = authorize(start.headers["location"], "ann", CALLBACK)
    landed = web.get(back.removeprefix("https://testserver"))
    assert landed.status_code == 200 and "url=/lookup" in landed.text
    (session,) = app.state.sessions._sessions.values()
    first_token, first_refresh = session.token, session.refresh_token
    # The token lives 45 s, inside the minute's margin: the next page refreshes it.
    assert web.get("/lookup").status_code == 200
    assert session.token != first_token and session.refresh_token != first_refresh
    assert session.analyst.subject == "ann"
    page = web.get("/lookup")
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    out = web.post("/signout", data={"csrf_token": csrf})
    assert out.status_code == 200 and "/session/end?" in out.text
    oidc = client_for(idp)
    with pytest.raises(IdentityError, match="refused the sign-in"):
        oidc.refresh(session.refresh_token)  # revoked at the provider by the sign-out
    assert web.get("/lookup").status_code == 303  # and the console session is gone
