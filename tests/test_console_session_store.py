"""Console sessions kept in a database (SQLite and PostgreSQL): a restart or a second console
keeps the analyst signed in; the rows are sealed, so the database alone reads no token and
makes no cookie; another console's sign-out or renewal is seen at once."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from mash.console import config as console_config
from mash.console.app import create_app
from mash.console.sessions import (
    COOKIE,
    SESSIONS,
    LookupRecord,
    SessionStore,
    SessionStoreError,
    SessionTable,
)
from mash.demo import federation
from mash.errors import ConfigError
from mash.identity.tokens import Analyst
from tests.audit_support import pg_base_url
from tests.console_support import console_config as write_console_config
from tests.helpers import build_federation

SECRET = b"s" * 32
# Sessions are counted (len) against the real clock, so the tests run at the real time.
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
SAM = Analyst("sam.analyst", "mash", "analyst", "mash-1", "idp", "t-1",
              NOW + dt.timedelta(hours=1), key_thumbprint="jkt")
HOUR = dt.timedelta(hours=1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sessions.db'}"
        return
    base = pg_base_url()
    schema = f"sessions_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    yield ("postgresql+psycopg://" + base.removeprefix("postgresql://") +
           f"{sep}options=-csearch_path%3D{schema}")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def console(url: str, secret: bytes = SECRET) -> SessionStore:
    return SessionStore(secret, dt.timedelta(hours=8), table=SessionTable(url, secret))


def test_a_second_console_sees_the_session_its_renewal_and_its_end(url: str) -> None:
    one, two = console(url), console(url)
    session, cookie = one.create("access-1", SAM, NOW, refresh_token="refresh-1",
                                 id_token="id-1")
    seen = two.get(cookie, NOW)
    assert seen is not None and seen.id == session.id
    assert (seen.token, seen.analyst, seen.csrf, seen.refresh_token, seen.id_token) == (
        "access-1", SAM, session.csrf, "refresh-1", "id-1")
    assert seen.expires_at == NOW + dt.timedelta(hours=8)
    # a lookup recorded on one console is in "My lookups" on the other
    record = LookupRecord("L-1", "MASH-1", "child_safeguarding", "research", "red", NOW,
                          NOW + dt.timedelta(hours=4), "KNOWN at police")
    one.record(session, record)
    assert two.get(cookie, NOW).lookups == [record]
    # renewed on the second: the first sees the new token (in the very object it holds)
    later = Analyst(**{**SAM.__dict__, "token_id": "t-2", "expires_at": NOW + 2 * HOUR})
    two.renew(seen, token="access-2", analyst=later, refresh_token="refresh-2", id_token="")
    again = one.get(cookie, NOW)
    assert again is session and session.token == "access-2" and session.analyst == later
    assert session.id_token == "id-1" and session.refresh_token == "refresh-2"
    assert len(one) == len(two) == 1
    # signed out on the first: gone on the second
    one.end(session)
    assert two.get(cookie, NOW) is None and len(two) == 0


def test_rows_are_sealed_and_named_by_a_keyed_hash(url: str) -> None:
    store = console(url)
    session, cookie = store.create("access-token-value", SAM, NOW,
                                   refresh_token="refresh-token-value")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(SESSIONS)).all()
    assert len(rows) == 1
    raw = bytes(rows[0].sealed) + rows[0].row_id.encode()
    for secret_value in ("access-token-value", "refresh-token-value", session.id,
                         session.csrf, SAM.subject):
        assert secret_value.encode() not in raw
    # another secret (a console of another MASH, or a stolen database) opens nothing
    assert console(url, b"t" * 32).get(cookie, NOW) is None
    assert console(url).get(cookie, NOW) is not None  # positive control: the same secret
    # a row altered, or its sealed data copied onto another session's row, opens nothing
    _, other_cookie = store.create("other", SAM, NOW)
    with engine.begin() as conn:
        conn.execute(SESSIONS.update().values(sealed=rows[0].sealed))
    assert console(url).get(other_cookie, NOW) is None
    assert console(url).get(cookie, NOW) is not None
    with engine.begin() as conn:
        conn.execute(SESSIONS.update().values(
            sealed=bytes(rows[0].sealed[:-1]) + bytes([rows[0].sealed[-1] ^ 1])))
    assert console(url).get(cookie, NOW) is None
    engine.dispose()


def test_expired_sessions_are_not_returned_and_are_deleted(url: str) -> None:
    store = console(url)
    short = Analyst(**{**SAM.__dict__, "expires_at": NOW + dt.timedelta(minutes=10)})
    _, cookie = store.create("tok", short, NOW)  # no refresh token: ends with the token
    assert store.get(cookie, NOW + dt.timedelta(minutes=9)) is not None
    assert store.get(cookie, NOW + dt.timedelta(minutes=11)) is None
    store.create("tok", SAM, NOW + dt.timedelta(minutes=11))  # creating purges
    with sa.create_engine(url).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(SESSIONS)).scalar() == 1


def test_a_database_that_cannot_be_used_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SessionStoreError, match="session store cannot be opened"):
        SessionTable(f"sqlite:///{tmp_path / 'missing-dir' / 'sessions.db'}", SECRET)
    store = console(f"sqlite:///{tmp_path / 'sessions.db'}")
    _, cookie = store.create("tok", SAM, NOW)
    drop_sessions_table(f"sqlite:///{tmp_path / 'sessions.db'}")
    with pytest.raises(SessionStoreError, match="session store could not be read") as exc:
        store.get(cookie, NOW)
    assert "tok" not in str(exc.value)


def drop_sessions_table(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE console_sessions"))
    engine.dispose()


# --- the console itself --------------------------------------------------------------


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> federation.Federation:
    return build_federation(tmp_path_factory.mktemp("console-sessions") / "fed", background=5)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match[1]


def test_a_restarted_or_second_console_keeps_the_analyst_signed_in(
        fed: federation.Federation) -> None:
    path = write_console_config(fed, session={
        "secret_file": str(fed.root / "keys" / "console-session.key"),
        "lifetime_minutes": 60, "store": "sqlite:///console-sessions.db"})
    cfg = console_config.load(path)
    assert cfg.session_store == f"sqlite:///{(path.parent / 'console-sessions.db').resolve()}"
    first = TestClient(create_app(cfg), base_url="https://testserver", follow_redirects=False)
    page = first.get("/signin")
    signed = first.post("/signin", data={"token": fed.token(), "csrf_token": csrf_of(page.text)})
    assert signed.status_code == 303 and signed.headers["location"] == "/lookup"
    cookie = first.cookies[COOKIE]
    # a second console (or this one restarted) from the same configuration
    second = TestClient(create_app(console_config.load(path)), base_url="https://testserver",
                        follow_redirects=False)
    second.cookies.set(COOKIE, cookie)
    assert second.get("/lookup").status_code == 200
    # positive control: a console keeping sessions in memory does not know the cookie
    memory = TestClient(create_app(console_config.load(write_console_config(
        fed, session={"secret_file": str(fed.root / "keys" / "console-session.key"),
                      "lifetime_minutes": 60}))), base_url="https://testserver",
        follow_redirects=False)
    memory.cookies.set(COOKIE, cookie)
    assert memory.get("/lookup").headers["location"] == "/signin"


def test_a_session_store_that_is_not_a_database_url_is_refused(
        fed: federation.Federation) -> None:
    path = write_console_config(fed, session={
        "secret_file": str(fed.root / "keys" / "console-session.key"), "store": "redis://x"})
    with pytest.raises(ConfigError,
                       match=r"session: store: expected sqlite:///path\.db or postgresql"):
        console_config.load(path)


def test_sessions_unavailable_is_a_503_page_not_a_traceback(
        fed: federation.Federation, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    path = write_console_config(fed, session={
        "secret_file": str(fed.root / "keys" / "console-session.key"),
        "store": f"sqlite:///{db}"})
    client = TestClient(create_app(console_config.load(path)), base_url="https://testserver",
                        follow_redirects=False)
    page = client.get("/signin")
    client.post("/signin", data={"token": fed.token(), "csrf_token": csrf_of(page.text)})
    assert client.get("/lookup").status_code == 200
    drop_sessions_table(f"sqlite:///{db}")
    response = client.get("/lookup")
    assert response.status_code == 503
    assert "Sign-in is unavailable" in response.text and "Traceback" not in response.text
