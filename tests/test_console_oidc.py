"""Console sign-in through a real OpenID provider (npm oidc-provider), driven in Debian's
chromium by Playwright: authorization code + PKCE with a confidential client, the role from
a group by claim mapping, the broker accepting the token, and RP-initiated sign-out that
ends the provider's session too. Pasted-token sign-in is off."""

from __future__ import annotations

import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mash.demo import federation
from tests.console_support import console_config, console_oidc
from tests.helpers import ThreadedFederation, build_federation
from tests.oidc_support import OidcProvider, available
from tests.test_console_browser import ARGS, CHROMIUM, _spki_hash, _wait_https

playwright_sync = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
    pytest.mark.skipif(bool(available()), reason=available() or ""),
    pytest.mark.timeout(300),
]
USERS = {"sue": {"claims": {"agency": "mash", "team": "MASH Team A",
                            "groups": ["staff", "mash-supervisors"]}},
         "ann": {"claims": {"agency": "mash", "team": "MASH Team A",
                            "groups": ["mash-analysts"]}}}
MAPPING = {"claims": {"role": "groups"},
           "claim_values": {"role": {"mash-supervisors": "supervisor",
                                     "mash-analysts": "analyst"}}}


@dataclass
class Setup:
    url: str
    idp: OidcProvider
    browser: Any
    log: Path
    ca: Path


def trust(path: Path, entry: dict[str, Any], *, unbound: bool = False) -> None:
    cfg = yaml.safe_load(path.read_text())
    cfg["auth"]["issuers"].append(entry)
    if unbound:  # the test provider's tokens are not certificate-bound
        cfg["auth"]["require_certificate_binding"] = False
    path.write_text(yaml.safe_dump(cfg))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("console-oidc")
    fed = build_federation(root / "fed", agencies=["police"], background=20)
    port = federation.free_port()
    url = f"https://localhost:{port}"
    idp = OidcProvider.start(root / "oidc", users=USERS,
                             console_redirect=f"{url}/signin/callback",
                             console_logout_redirect=f"{url}/signin")
    entry = {**idp.issuer_config(agencies=["mash"]), **MAPPING}
    trust(fed.broker_config, entry, unbound=True)
    trust(fed.agent_configs["police"], entry)
    threaded = ThreadedFederation(fed, ["police"])
    cfg = console_config(fed, port=port, dev_token_signin=False, oidc=console_oidc(
        root, issuer=idp.issuer, redirect_uri=f"{url}/signin/callback",
        post_logout_redirect_uri=f"{url}/signin"))
    log = root / "console.log"
    fh = log.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "mash", "console", "serve", "--config",
                             str(cfg)], stdout=fh, stderr=fh)
    try:
        _wait_https(url, fed.certs / "ca.pem", proc, log)
        spki = _spki_hash(fed.certs / "console-console.pem")
        with playwright_sync.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM), headless=True,
                args=[*ARGS, f"--ignore-certificate-errors-spki-list={spki}"])
            try:
                yield Setup(url, idp, browser, log, fed.certs / "ca.pem")
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        fh.close()
        threaded.close()
        idp.stop()


def sign_in_at_provider(page: Any, login: str) -> None:
    page.get_by_role("link", name="Sign in with your identity provider").click()
    page.wait_for_url("**/interaction/**")
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()  # consent (offline access)
    page.wait_for_url("**/lookup")


def test_sign_in_at_the_provider_and_sign_out_there_too(setup: Setup) -> None:
    context = setup.browser.new_context(base_url=setup.url)
    page = context.new_page()
    page.goto("/signin")
    assert page.locator("textarea#token").count() == 0  # pasted tokens are off
    sign_in_at_provider(page, "sue")
    header = page.locator("header").inner_text()
    assert "sue (supervisor, mash)" in header  # the role from the group, by claim mapping
    page.goto("/agents")
    assert "ONLINE" in page.locator("#agents").inner_text()  # the broker took the token
    assert "did not accept your sign-in token" not in page.content()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Yes, sign me out").click()  # the provider's page
    page.wait_for_url("**/signin")
    page.goto("/lookup")
    page.wait_for_url("**/signin")  # the console session has ended
    # The provider's session has ended too: signing in again asks for the login.
    page.get_by_role("link", name="Sign in with your identity provider").click()
    page.wait_for_url("**/interaction/**")
    assert page.locator("input[name=login]").count() == 1
    log = setup.log.read_text()
    assert '"through": "oidc"' in log and "refresh_token_not_revoked" not in log
    context.close()


def test_pasted_token_sign_in_is_refused_when_off(setup: Setup) -> None:
    context = setup.browser.new_context(base_url=setup.url)
    page = context.new_page()
    reply = httpx.post(f"{setup.url}/signin", data={"token": "x", "csrf_token": "y"},
                       verify=ssl.create_default_context(cafile=str(setup.ca)))
    assert reply.status_code == 403 and "for development only" in reply.text
    page.goto("/signin")
    sign_in_at_provider(page, "ann")  # the positive control
    assert "ann (analyst, mash)" in page.locator("header").inner_text()
    context.close()
