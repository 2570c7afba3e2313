"""The console's lookups bound to the analyst's session key, end to end: a real OpenID
provider (npm oidc-provider) binding the console's tokens to a per-session proof key (DPoP,
cnf.jkt; `oidc.bind_tokens: true`), and a real broker and agents on loopback (mTLS) that
require a proof with every lookup (`auth.require_bound_proof: true`). The console's lookups
are answered; the same access token copied out of the session, without the key or with
another, is refused by the broker and by an agent; the session and its key outlive a console
restart (a shared SQLite session store, rows sealed); a refresh binds the new token to the
same key."""

from __future__ import annotations

import io
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mash import logs
from mash.client import BrokerClient, ClientConfig
from mash.console import config as console_config
from mash.console.app import create_app
from mash.console.sessions import COOKIE, Session
from mash.demo import federation
from mash.identity.dpop import ClientKey
from mash.identity.request_binding import sign_lookup
from mash.v1 import answer_pb2 as R
from tests.console_support import console_config as write_console_config
from tests.console_support import console_oidc
from tests.helpers import ThreadedFederation, build_federation, lookup_request
from tests.oidc_support import OidcProvider, authorize, available
from tests.proof_support import AGENCIES, plain_query, require_proofs, token_rejected
from tests.test_console_app import csrf_of
from tests.test_console_cases import FAMILY
from tests.test_console_oidc_flow import CALLBACK, USERS
from tests.test_oidc_federation import trust

pytestmark = pytest.mark.skipif(bool(available()), reason=available() or "")
LOOKUP = {"name": "Leah Thompson", "dob": "2014-05-17", "purpose": "child_safeguarding",
          "stage": "research", "case": "MASH-2026-0042", "reason": "School referral",
          "urgency": "red"}


@dataclass
class World:
    fed: federation.Federation
    idp: OidcProvider
    config: Path
    sessions_db: Path
    threaded: ThreadedFederation


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("console-bound")
    # Access tokens live 45 s, inside the console's minute of margin: every page refreshes.
    idp = OidcProvider.start(root / "oidc", users=USERS, access_token_ttl=45,
                             console_redirect=CALLBACK,
                             console_logout_redirect="https://testserver/signin")
    try:
        fed = build_federation(root / "fed", AGENCIES, background=30)
        trust(fed.broker_config, idp, 60, broker=True)
        for agency in AGENCIES:
            trust(fed.agent_configs[agency], idp, 60)
        require_proofs(fed)  # broker and agents: every lookup needs a bound token and proof
        path = write_console_config(fed, dev_token_signin=False, oidc=console_oidc(
            root, issuer=idp.issuer, redirect_uri=CALLBACK, bind_tokens=True))
        cfg = yaml.safe_load(path.read_text())
        assert cfg["auth"]["require_bound_proof"] is True  # the broker's auth, copied
        sessions_db = root / "sessions.db"
        cfg["session"]["store"] = f"sqlite:///{sessions_db}"
        path.write_text(yaml.safe_dump(cfg))
        threaded = ThreadedFederation(fed, AGENCIES)
        try:
            yield World(fed, idp, path, sessions_db, threaded)
        finally:
            threaded.close()
    finally:
        idp.stop()


def console(world: World) -> tuple[FastAPI, TestClient]:
    app = create_app(console_config.load(world.config))
    return app, TestClient(app, base_url="https://testserver", follow_redirects=False)


def sign_in(web: TestClient) -> None:
    start = web.get("/signin/oidc")
    assert start.status_code == 303
    landed = web.get(authorize(start.headers["location"], "ann", CALLBACK)
                     .removeprefix("https://testserver"))
    assert landed.status_code == 200 and "url=/lookup" in landed.text, landed.text


def session_of(app: FastAPI, web: TestClient) -> Session:
    session = app.state.sessions.get(web.cookies[COOKIE])
    assert isinstance(session, Session)
    return session


def jkt(token: str) -> Any:
    return jwt.decode(token, options={"verify_signature": False}).get("cnf", {}).get("jkt")


def look_up(web: TestClient) -> dict[str, str]:
    """The console's lookup form, posted: each agency's state on the results page."""
    page = web.get("/lookup")
    assert page.status_code == 200
    response = web.post("/lookup", data={**LOOKUP, "csrf_token": csrf_of(page.text)})
    assert response.status_code == 200, response.text
    return dict(re.findall(r'id="answer-([\w-]+)" data-state="([\w-]+)"', response.text))


def refused(token: str, *, key: ClientKey | None, world: World) -> str:
    """The console's token used straight through mash.client, as a thief would."""
    cfg = console_config.load(world.config)
    client = ClientConfig(f"127.0.0.1:{world.fed.broker_port}", "localhost", cfg.client_tls,
                          token, proof_key=key)
    with BrokerClient(client) as broker, pytest.raises(grpc.RpcError) as caught:
        broker.lookup(lookup_request(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, caught.value.details()
    return caught.value.details() or ""


def test_the_consoles_lookups_are_signed_and_its_token_alone_is_refused(world: World) -> None:
    app, web = console(world)
    stream = io.StringIO()
    logs.configure("debug", stream=stream, service="console")
    try:
        sign_in(web)
        session = session_of(app, web)
        key = session.proof_key()
        assert key is not None
        assert jkt(session.token) == key.thumbprint == session.analyst.key_thumbprint
        # the positive control: the console's lookup, signed with the session's key, is
        # answered by broker and agents that require a proof
        states = look_up(web)
    finally:
        logs.configure()
    assert states == {"police": "known", "health": "known"}, states
    # neither the key nor the token is logged (nor the key's PEM body, nor a proof)
    text = stream.getvalue()
    events = [json.loads(line) for line in text.splitlines()]
    assert {"signed_in", "lookup_answered"} <= {e["event"] for e in events}
    assert not [e for e in events if e["event"] in ("lookup_failed", "signin_refused")]
    assert [e["key_bound"] for e in events if e["event"] == "signed_in"] == [True]
    pem_body = "".join(key.to_pem().decode().splitlines()[1:-1])
    assert "PRIVATE KEY" not in text and pem_body[:40] not in text
    assert session.token not in text
    assert "PRIVATE" not in web.cookies[COOKIE]

    # The same access token, copied out of the session: refused without the key, or with
    # another (the broker, before routing) ...
    token = session_of(app, web).token
    assert "no request proof" in refused(token, key=None, world=world)
    assert "signed by a key other than the one the analyst token is bound to" in \
        refused(token, key=ClientKey.generate(), world=world)
    # ... and by an agent, whatever a broker lets through
    police = world.threaded.run.agents["police"]
    request = lookup_request()
    token_rejected(police.handler.answer(plain_query(token, request, "")), "no request proof")
    other = sign_lookup(ClientKey.generate(), token=token, subject=request.subject,
                        context=request.context)
    token_rejected(police.handler.answer(plain_query(token, request, other)), "key other than")
    mine = sign_lookup(key, token=token, subject=request.subject, context=request.context)
    assert police.handler.answer(plain_query(token, request, mine)).state == R.ANSWER_STATE_KNOWN


def test_a_restarted_console_keeps_the_session_and_its_key(world: World) -> None:
    app, web = console(world)
    sign_in(web)
    before = session_of(app, web)
    key = before.proof_key()
    assert key is not None
    assert look_up(web)["police"] == "known"
    cookie = web.cookies[COOKIE]
    app.state.sessions.close()  # the console stops

    # The row holds the key, sealed: neither it nor the token can be read in the database.
    with sqlite3.connect(world.sessions_db) as db:
        rows = [bytes(r[0]) for r in db.execute("SELECT sealed FROM console_sessions")]
    assert rows
    pem_body = "".join(key.to_pem().decode().splitlines()[1:-1]).encode()
    for sealed in rows:
        assert b"PRIVATE KEY" not in sealed and pem_body[:40] not in sealed
        assert before.token.encode() not in sealed

    restarted, web = console(world)  # a new console process: same config, same store
    web.cookies.set(COOKIE, cookie)
    assert look_up(web)["police"] == "known"  # signed with the key kept in the session
    after = session_of(restarted, web)
    again = after.proof_key()
    assert again is not None and again.thumbprint == key.thumbprint
    assert again.to_pem() == key.to_pem()
    assert jkt(after.token) == key.thumbprint


def test_a_refresh_keeps_the_token_bound_to_the_sessions_key(world: World) -> None:
    app, web = console(world)
    sign_in(web)
    session = session_of(app, web)
    key = session.proof_key()
    assert key is not None
    first_token, first_refresh = session.token, session.refresh_token
    assert web.get("/agents").status_code == 200  # 45 s left < the minute: refreshed first
    session = session_of(app, web)
    assert session.token != first_token and session.refresh_token != first_refresh
    assert jkt(session.token) == key.thumbprint == session.analyst.key_thumbprint
    again = session.proof_key()
    assert again is not None and again.to_pem() == key.to_pem()
    assert look_up(web)["police"] == "known"  # the renewed token, signed with the same key


def test_a_case_opened_by_a_bound_session_is_signed_person_by_person(world: World) -> None:
    """Cases ask the broker once per person: each lookup carries its own proof."""
    _, web = console(world)
    sign_in(web)
    page = web.get("/cases")
    response = web.post("/cases", data={**FAMILY, "csrf_token": csrf_of(page.text)})
    assert response.status_code == 303, response.text
    case = web.get(response.headers["location"])
    assert case.status_code == 200
    leah = case.text.split('<tr id="person-0">')[1].split("</tr>")[0]
    assert 'data-state="known" data-agency="police"' in leah
    assert 'data-state="not-checked"' not in case.text  # no agent refused a proof
