"""The console in process (Starlette's TestClient over https://testserver): sessions, CSRF,
sign-in, validation and the IG pages. The browser tests drive a real console end to end."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from mash.console import config as console_config
from mash.console.app import create_app
from mash.console.forms import LookupForm, validate
from mash.console.sessions import COOKIE, SessionStore
from mash.console.views import rag_timer
from mash.demo import federation
from mash.errors import ConfigError
from mash.identity import tokens
from tests.console_support import console_config as write_console_config
from tests.helpers import build_federation


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> federation.Federation:
    return build_federation(tmp_path_factory.mktemp("console") / "fed", background=30)


@pytest.fixture(scope="module")
def cfg_path(fed: federation.Federation) -> Path:
    return write_console_config(fed)


@pytest.fixture
def client(cfg_path: Path) -> TestClient:
    return TestClient(create_app(console_config.load(cfg_path)), base_url="https://testserver",
                      follow_redirects=False)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match[1]


def sign_in(client: TestClient, token: str) -> None:
    page = client.get("/signin")
    response = client.post("/signin", data={"token": token, "csrf_token": csrf_of(page.text)})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/lookup"


def test_every_page_needs_a_session(client: TestClient) -> None:
    for path in ("/lookup", "/lookups", "/agents", "/agreements", "/explain", "/audit"):
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/signin"
    for path in ("/lookup", "/audit", "/signout"):
        response = client.post(path, data={"name": "Leah Thompson"})
        assert response.status_code == 403, path
        assert "not signed in" in response.text
    # a forged cookie is no session either
    client.cookies.set(COOKIE, "forged.value.here")
    assert client.get("/lookup").status_code == 303


def test_sign_in_sets_a_strict_secure_expiring_cookie(client: TestClient,
                                                      fed: federation.Federation) -> None:
    page = client.get("/signin")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    response = client.post("/signin", data={"token": fed.token(),
                                            "csrf_token": csrf_of(page.text)})
    assert response.status_code == 303
    cookie = next(c for c in response.headers.get_list("set-cookie")
                  if c.startswith(f"{COOKIE}="))
    lowered = cookie.lower()
    assert "secure" in lowered and "httponly" in lowered and "samesite=strict" in lowered
    max_age = int(re.search(r"max-age=(\d+)", lowered)[1])  # type: ignore[index]
    assert 0 < max_age <= 3600  # the configured hour (or the token's life, if shorter)
    assert fed.token().split(".")[0] not in cookie  # the JWT stays on the server
    assert client.get("/lookup").status_code == 200


def test_sign_in_refuses_bad_tokens(client: TestClient, fed: federation.Federation,
                                    tmp_path: Path) -> None:
    other_key, _ = tokens.generate_issuer_key()
    forged = tokens.issue_token(other_key, issuer=federation.ISSUER, subject="mallory",
                                agency="mash", role="analyst",
                                bind_certificate=(fed.certs / "mash-client.pem").read_bytes())
    expired = fed.token(ttl=dt.timedelta(seconds=-120))
    unbound = fed.token(bind=None)  # the broker requires certificate-bound tokens
    for token, why in ((forged, "signature"), (expired, "expired"), (unbound, "bound"),
                       ("not-a-token", "")):
        page = client.get("/signin")
        response = client.post("/signin", data={"token": token,
                                                "csrf_token": csrf_of(page.text)})
        assert response.status_code == 401, why
        assert "Sign-in refused" in response.text
        assert why in response.text.lower()
        assert COOKIE not in response.cookies
    assert client.get("/lookup").status_code == 303


def test_csrf_is_checked_on_every_post(client: TestClient, fed: federation.Federation) -> None:
    page = client.get("/signin")
    response = client.post("/signin", data={"token": fed.token(), "csrf_token": "wrong"})
    assert response.status_code == 403
    assert csrf_of(page.text)  # the page had one; a forged form does not
    sign_in(client, fed.token())
    form = {"name": "Leah Thompson", "dob": "2014-05-17", "purpose": "child_safeguarding",
            "stage": "research", "case": "MASH-1", "reason": "Testing the CSRF check",
            "urgency": "red"}
    assert client.post("/lookup", data=form).status_code == 403
    response = client.post("/lookup", data={**form, "csrf_token": "not-the-token"})
    assert response.status_code == 403
    assert "CSRF" in response.text
    assert client.post("/signout", data={}).status_code == 403
    assert client.get("/lookup").status_code == 200  # still signed in


def test_sign_out_ends_the_session(client: TestClient, fed: federation.Federation) -> None:
    sign_in(client, fed.token())
    page = client.get("/lookup")
    cookie = client.cookies.get(COOKIE)
    response = client.post("/signout", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303
    client.cookies.set(COOKIE, cookie)  # replaying the old cookie does not help
    assert client.get("/lookup").status_code == 303


def test_validation_messages_sit_next_to_their_fields(client: TestClient,
                                                      fed: federation.Federation) -> None:
    sign_in(client, fed.token())
    page = client.get("/lookup")
    response = client.post("/lookup", data={
        "csrf_token": csrf_of(page.text), "name": "Leah Thompson", "dob": "31/02/2014",
        "nhs": "1234567890", "postcodes": "NOT A POSTCODE", "purpose": "child_safeguarding",
        "stage": "s42", "case": "", "reason": "short", "urgency": "red"})
    assert response.status_code == 422
    html = response.text
    for name in ("dob", "nhs", "postcodes", "stage"):
        assert f'id="{name}-error"' in html, name
        assert re.search(rf'id="{name}"[^>]*aria-invalid="true"', html, re.S), name
    assert "not a calendar date" in html
    assert "There is a problem" in html
    assert 'value="Leah Thompson"' in html  # what was typed is kept


def test_form_validation_uses_the_federation_rules() -> None:
    purposes = {"child_safeguarding": ["triage", "research"]}
    form = LookupForm.from_post({"name": "Leah Thompson", "purpose": "child_safeguarding",
                                 "stage": "research", "case": "bad ref!",
                                 "reason": "A reason long enough", "urgency": "amber"})
    assert validate(form, purposes) is None
    assert "case" in form.errors
    form = LookupForm.from_post({"name": "", "purpose": "child_safeguarding",
                                 "stage": "research", "case": "MASH-1",
                                 "reason": "A reason long enough", "urgency": "amber"})
    assert validate(form, purposes) is None
    assert "name" in form.errors
    form = LookupForm.from_post({"name": "Leah Thompson", "aliases": "Lee Thompson\nL Marie",
                                 "postcodes": "ls9 8ab, LS1 4AB", "nhs": "",
                                 "local": "police:WYP123", "purpose": "child_safeguarding",
                                 "stage": "triage", "case": "MASH-1",
                                 "reason": "A reason long enough", "urgency": "green"})
    request = validate(form, purposes)
    assert request is not None, form.errors
    assert len(request.subject.aliases) == 2 and len(request.subject.addresses) == 2
    assert request.subject.identifiers[0].issuer == "police"


def test_rag_timer() -> None:
    asked = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
    hours = {"red": 4.0, "amber": 24.0, "green": 72.0}
    red = rag_timer("red", asked, hours)
    assert red.due_at == asked + dt.timedelta(hours=4)
    assert red.remaining_text(asked + dt.timedelta(hours=1)) == "3h 0m left"
    assert red.remaining_text(asked + dt.timedelta(hours=5)) == "OVERDUE by 1h 0m"
    assert rag_timer("green", asked, hours).remaining_text(asked) == "3d 0h 0m left"


def test_sessions_expire_with_the_token_or_the_lifetime() -> None:
    store = SessionStore(b"x" * 32, dt.timedelta(minutes=30))
    now = dt.datetime.now(dt.UTC)
    analyst = tokens.Analyst("a", "mash", "analyst", "", "iss", "j",
                             expires_at=now + dt.timedelta(minutes=10))
    session, cookie = store.create("tok", analyst, now)
    assert session.expires_at == analyst.expires_at
    assert store.get(cookie, now) is session
    assert store.get(cookie, now + dt.timedelta(minutes=11)) is None
    assert store.get(cookie + "x", now) is None
    assert len(store) == 0


def test_ig_pages_are_for_ig_leads(client: TestClient, fed: federation.Federation) -> None:
    sign_in(client, fed.token())
    for path in ("/agreements", "/explain", "/audit"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "information governance" in response.text


def test_agreements_and_explain(client: TestClient, fed: federation.Federation) -> None:
    sign_in(client, fed.token(subject="jo.ig", role="ig_lead"))
    page = client.get("/agreements")
    assert page.status_code == 200
    assert "police-mash-safeguarding" in page.text
    assert "Review by" in page.text
    page = client.get("/explain", params={"purpose": "child_safeguarding", "stage": "research",
                                          "requester": "mash", "role": "analyst"})
    assert page.status_code == 200
    assert 'id="explain-police"' in page.text
    assert "last_incident_date" in page.text and "month" in page.text
    assert "is NOT asked" in page.text  # probation: no agreement for children
    bad = client.get("/explain", params={"purpose": "child_safeguarding", "stage": "s42"})
    assert 'id="stage-error"' in bad.text
    # only the chosen purpose's stages are offered: s42 is an adult safeguarding stage
    s42 = re.search(r'<option value="s42"[^>]*>', bad.text)
    s47 = re.search(r'<option value="s47"[^>]*>', bad.text)
    assert s42 and "hidden disabled" in s42.group(0)
    assert s47 and "hidden" not in s47.group(0)  # the positive control
    blank = client.get("/explain")  # no purpose chosen yet: every stage offered
    assert all("hidden" not in m.group(0)
               for m in re.finditer(r'<option value="s4[27]"[^>]*>', blank.text))


def test_audit_search_needs_criteria(client: TestClient, fed: federation.Federation) -> None:
    sign_in(client, fed.token(subject="jo.ig", role="ig_lead"))
    page = client.get("/audit")
    response = client.post("/audit", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 422
    assert "say what to search for" in response.text
    response = client.post("/audit", data={"csrf_token": csrf_of(page.text),
                                           "nhs": "9434765919"})
    assert response.status_code == 200
    assert "0 audit entries" in response.text
    # a bad date is named as the form names it, not as the CLI's option
    response = client.post("/audit", data={"csrf_token": csrf_of(page.text),
                                           "name": "Leah Thompson", "dob": "17/05/2014"})
    assert response.status_code == 422
    assert "date of birth &#39;17/05/2014&#39; is not a date like" in response.text
    assert "--dob" not in response.text


def test_config_errors_are_one_readable_line(cfg_path: Path, tmp_path: Path) -> None:
    data = yaml.safe_load(cfg_path.read_text())
    data["sesion"] = data.pop("session")
    bad = tmp_path / "console.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="session"):
        console_config.load(bad)
    data["session"] = data.pop("sesion")
    data["listen"] = "nowhere"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="HOST:PORT"):
        console_config.load(bad)


def test_serve_reports_config_errors_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "console.yaml"
    bad.write_text("listen: 127.0.0.1:1\nbroker: {address: x}\n")
    for config in (tmp_path / "missing.yaml", bad):
        result = subprocess.run([sys.executable, "-m", "mash", "console", "serve", "--config",
                                 str(config)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mash: error:"), result.stderr
        assert "Traceback" not in result.stderr


def test_an_unreachable_broker_is_never_reported_as_answers(
        client: TestClient, fed: federation.Federation) -> None:
    # no broker runs in this module: the console must say that nobody was checked
    sign_in(client, fed.token())
    page = client.get("/lookup")
    response = client.post("/lookup", data={
        "csrf_token": csrf_of(page.text), "name": "Leah Thompson", "dob": "2014-05-17",
        "purpose": "child_safeguarding", "stage": "research", "case": "MASH-1",
        "reason": "Checking the broker is down", "urgency": "red"})
    assert response.status_code == 502
    assert "NO agency was checked" in response.text
    assert 'id="results"' not in response.text
    agents = client.get("/agents")
    assert agents.status_code == 502
    assert "could not be reached" in agents.text


def test_a_token_the_broker_refuses_ends_the_session(
        client: TestClient, fed: federation.Federation,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import grpc

    from mash.console import broker_client

    class Unauthenticated(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.UNAUTHENTICATED

        def details(self) -> str:
            return "token revoked"

    def refuse(*_args: object) -> None:
        raise Unauthenticated()

    monkeypatch.setattr(broker_client.Broker, "agents", refuse)
    sign_in(client, fed.token())
    response = client.get("/agents")
    assert response.status_code == 401
    assert "Sign in again" in response.text
    assert client.get("/lookup").status_code == 303  # the session is gone
