"""A console.yaml for a test federation: the console's own HTTPS certificate, a session
secret, and the broker's token issuers, policy bundle and audit store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mash.audit import keys
from mash.cases.store import write_case_key
from mash.console.config import write_secret
from mash.demo import federation
from mash.identity import certs
from mash.identity.names import PeerIdentity


def console_config(fed: federation.Federation, port: int | None = None,
                   **overrides: Any) -> Path:
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
    cfg.update(overrides)
    path = root / "console.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path
