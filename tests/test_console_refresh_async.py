"""The console refreshes an analyst's token off the event loop: while a slow provider (a real
oidc-provider behind a proxy that holds its token endpoint's answers) keeps one session's
refresh waiting, other requests are answered at once, and the session's own concurrent
requests share one refresh (a refresh token is single use)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mash.console import config as console_config
from mash.console.app import create_app
from mash.console.sessions import COOKIE
from tests.console_support import console_config as write_console_config
from tests.console_support import console_oidc
from tests.counting_proxy import CountingProxy
from tests.helpers import build_federation
from tests.oidc_support import (
    OidcProvider,
    authorize,
    available,
    free_port,
)

pytestmark = pytest.mark.skipif(bool(available()), reason=available() or "")
CALLBACK = "https://testserver/signin/callback"
USERS = {"ann": {"claims": {"agency": "mash", "role": "analyst", "team": "MASH Team A"}}}
SLOW = 2.0


@pytest.fixture
def slow_idp(tmp_path: Path) -> Iterator[tuple[CountingProxy, OidcProvider]]:
    proxy = CountingProxy(free_port(), free_port()).start()
    idp = OidcProvider.start(tmp_path / "oidc", users=USERS, access_token_ttl=120,
                             console_redirect=CALLBACK,
                             console_logout_redirect="https://testserver/signin",
                             port=proxy.port, listen_port=proxy.backend_port)
    try:
        yield proxy, idp
    finally:
        idp.stop()
        proxy.stop()


def signed_in(app: FastAPI) -> str:
    """Sign ann in through the provider; the session cookie."""
    web = TestClient(app, base_url="https://testserver", follow_redirects=False)
    start = web.get("/signin/oidc")
    back = authorize(start.headers["location"], "ann", CALLBACK)
    assert web.get(back.removeprefix("https://testserver")).status_code == 200
    cookie = web.cookies.get(COOKIE)
    assert cookie
    return cookie


async def timed(web: httpx.AsyncClient, path: str, since: float) -> tuple[float, int]:
    """Seconds from `since` until the answer, and its status."""
    reply = await web.get(path)
    return time.monotonic() - since, reply.status_code


def test_a_slow_refresh_stalls_no_other_request(
        slow_idp: tuple[CountingProxy, OidcProvider], tmp_path: Path) -> None:
    proxy, idp = slow_idp
    fed = build_federation(tmp_path / "fed", agencies=["police"], background=5)
    path = write_console_config(fed, dev_token_signin=False, oidc=console_oidc(
        tmp_path, issuer=idp.issuer, redirect_uri=CALLBACK))
    cfg = yaml.safe_load(path.read_text())
    cfg["auth"]["issuers"].append(idp.issuer_config(agencies=["mash"]))
    path.write_text(yaml.safe_dump(cfg))
    app = create_app(console_config.load(path))
    cookie = signed_in(app)
    (session,) = app.state.sessions._sessions.values()
    # Two minutes on: ann's token has 30 s left, inside the minute's refresh margin (the
    # token it is refreshed for lives two minutes, outside it).
    session.analyst = dataclasses.replace(
        session.analyst, expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))
    first_token = session.token
    tokens_before = proxy.count("POST /token")
    proxy.delays["POST /token"] = SLOW

    async def run() -> list[tuple[float, int]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver",
                                     cookies={COOKIE: cookie}) as ann, \
                httpx.AsyncClient(transport=transport, base_url="https://testserver") as web:
            # /agents is an async handler (an event-loop stall would show), /lookup not.
            since = time.monotonic()
            refreshing = [asyncio.create_task(timed(ann, page, since))
                          for page in ("/agents", "/lookup", "/lookup")]
            await asyncio.sleep(0.3)  # the refresh is now waiting on the provider
            others = [await timed(web, "/signin", since) for _ in range(5)]
            return others + [await task for task in refreshing]

    results = asyncio.run(run())
    others, refreshed = results[:5], results[5:]
    # Other requests are answered while the refresh still waits on the provider...
    assert all(status == 200 and at < SLOW / 2 for at, status in others), others
    # ...and ann's own three requests wait for one refresh, then are served (/agents asks
    # the broker, which this test does not run: 502, not a sign-in page).
    assert [status for _, status in refreshed] == [502, 200, 200], refreshed
    assert all(at >= SLOW * 0.9 for at, _ in refreshed), refreshed
    assert proxy.count("POST /token") - tokens_before == 1
    assert session.token != first_token and session.analyst.subject == "ann"
