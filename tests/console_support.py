"""What the console's tests share: a console.yaml for a test federation (the console's own
HTTPS certificate, a session secret, and the broker's token issuers, policy bundle and audit
store), the in-process console with a running federation's broker and agents, and the case
form filled in a browser."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from mash.audit import keys
from mash.cases.store import write_case_key
from mash.console import config as console_config_mod
from mash.console.app import create_app
from mash.console.config import write_secret
from mash.demo import federation
from mash.identity import certs
from mash.identity.names import PeerIdentity
from tests.helpers import ThreadedFederation, build_federation
from tests.oidc_support import CONSOLE_CLIENT, CONSOLE_SECRET


def console_config(fed: federation.Federation, port: int | None = None, *,
                   cases: dict[str, Any] | None = None, **overrides: Any) -> Path:
    """console.yaml for `fed`: `overrides` replace top-level sections, `cases` adds to
    (or replaces keys of) the cases: section."""
    root = fed.root
    paths = certs.issue(fed.certs, PeerIdentity("console", "console"),
                        dns_names=("localhost",), ip_addresses=("127.0.0.1",))
    secret = write_secret(root / "keys" / "console-session.key")
    case_key = root / "keys" / "console-cases.key"
    if not case_key.exists():
        write_case_key(case_key)
    audit_keys = root / "keys" / "console-audit"
    if not (audit_keys / keys.HASH_KEY).exists():
        keys.write_keys(audit_keys)
    broker = yaml.safe_load(fed.broker_config.read_text())
    cfg: dict[str, Any] = {
        "listen": f"127.0.0.1:{port or federation.free_port()}",
        "server_tls": {"cert": str(paths.cert), "key": str(paths.key)},
        "broker": {"address": f"127.0.0.1:{fed.broker_port}", "server_name": "localhost",
                   "timeout_seconds": 15},
        "tls": {"ca": str(fed.certs / "ca.pem"), "cert": str(fed.certs / "mash-client.pem"),
                "key": str(fed.certs / "mash-client.key")},
        "auth": broker["auth"],
        "session": {"secret_file": str(secret), "lifetime_minutes": 60},
        "ig_roles": ["ig_lead"],
        "policy": broker["policy"],
        "audit": {"store": broker["audit"]["store"],
                  "hash_key_file": broker["audit"]["hash_key_file"]},
        "cases": {"store": f"sqlite:///{root / 'console-cases.db'}",
                  "live_poll_seconds": 1,
                  "key_file": str(case_key), "retention_days": 30,
                  "audit": {"store": f"sqlite:///{root / 'audit' / 'console.db'}",
                            "writer_id": "console",
                            "hash_key_file": str(audit_keys / keys.HASH_KEY),
                            "signing_key_file": str(audit_keys / keys.SIGNING_KEY)}},
        "log_level": "info",
        # These tests sign in by pasting a token: development only, so turned on here.
        "dev_token_signin": True,
    }
    cfg["cases"].update(cases or {})
    cfg.update(overrides)
    path = root / "console.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def console_oidc(root: Path, *, issuer: str, redirect_uri: str, **extra: Any) -> dict[str, Any]:
    """console.yaml's `oidc:` for the test provider's console client, its secret written
    (owner-only) to root/client.secret."""
    secret = root / "client.secret"
    secret.write_text(CONSOLE_SECRET)
    secret.chmod(0o600)
    return {"issuer": issuer, "client_id": CONSOLE_CLIENT, "client_secret_file": str(secret),
            "redirect_uri": redirect_uri, **extra}


def console_client(fed: federation.Federation, **overrides: Any) -> TestClient:
    """The console in process (no server) for `fed`, over https, redirects not followed."""
    cfg = console_config_mod.load(console_config(fed, **overrides))
    return TestClient(create_app(cfg), base_url="https://testserver", follow_redirects=False)


def console_fixtures(name: str, agencies: list[str]) -> tuple[Callable[..., Any], ...]:
    """A test module's fixtures `threaded` (a federation with these agencies' agents
    running, for the module), `fed` (its federation) and `client` (console_client, per
    test): assign them at the module's top, `threaded, fed, client = console_fixtures(...)`."""

    @pytest.fixture(scope="module")
    def threaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedFederation]:
        running = ThreadedFederation(
            build_federation(tmp_path_factory.mktemp(name) / "fed", background=30), agencies)
        try:
            yield running
        finally:
            running.close()

    @pytest.fixture(scope="module")
    def fed(threaded: ThreadedFederation) -> federation.Federation:
        return threaded.fed

    @pytest.fixture
    def client(fed: federation.Federation) -> TestClient:
        return console_client(fed)

    return threaded, fed, client


def open_family_case(page: Any, reference: str) -> None:
    """In a browser on the Cases page: open a case about Leah Thompson (the child) and
    Darren Thompson (her father), and wait for its family grid."""
    page.get_by_label("Case reference").fill(reference)
    page.get_by_label("Purpose").select_option("child_safeguarding")
    page.get_by_label("Stage").select_option("research")
    page.get_by_label("Why the household is looked up").fill(
        "School referral; the household is checked together")
    page.get_by_label("Urgency").select_option("red")
    page.get_by_label("Person 1: Full name").fill("Leah Thompson")
    page.get_by_label("Person 1: Date of birth").fill("2014-05-17")
    page.get_by_label("Person 1: Postcode").fill("LS9 8AB")
    page.get_by_label("Person 2: Relationship to the child").select_option("father")
    page.get_by_label("Person 2: Full name").fill("Darren Thompson")
    page.get_by_label("Person 2: Date of birth").fill("1986-07-21")
    page.get_by_role("button", name="Look up the household").click()
    page.wait_for_selector("#family-grid")
