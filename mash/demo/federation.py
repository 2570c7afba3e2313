"""Lay out a whole federation in one directory: CA, certificates, issuer key, token, configs.

Used by `mash demo` and by the integration tests, so both run the same configuration.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import mash
from mash import signing
from mash.audit import keys as audit_keys
from mash.blind import setup as blind_setup
from mash.demo.agencies import AGENCIES
from mash.files import write_atomic
from mash.identity import certs, crl, tokens
from mash.identity.names import PeerIdentity
from mash.policy import bundle

ISSUER = "https://idp.mash.example"
# The repository's agreements; the demo and the tests sign them with a throwaway IG key.
POLICIES = Path(mash.__file__).resolve().parents[1] / "policies"
REQUESTER = "mash"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Federation:
    root: Path
    certs: Path
    broker_config: Path
    client_config: Path
    issuer_key: Path
    broker_port: int
    agent_configs: dict[str, Path] = field(default_factory=dict)
    # every broker (the first is broker_config/broker_port): build(..., brokers=2) for more
    broker_configs: list[Path] = field(default_factory=list)
    broker_ports: list[int] = field(default_factory=list)
    blind_client_config: Path | None = None  # the same analyst, every lookup blind
    blind: blind_setup.BlindKeys | None = None

    def token(self, subject: str = "a.analyst", agency: str = REQUESTER, role: str = "analyst",
              ttl: dt.timedelta = dt.timedelta(hours=1), bind: str | None = "mash-client",
              **kw: Any) -> str:
        """An analyst token, bound by default to the `bind` client certificate."""
        cert = (self.certs / f"{bind}.pem").read_bytes() if bind else None
        return tokens.issue_token(self.issuer_key.read_bytes(), issuer=ISSUER, subject=subject,
                                  agency=agency, role=role, team="MASH Team A", ttl=ttl,
                                  bind_certificate=cert, **kw)


def _auth(fed_certs: Path) -> dict[str, Any]:
    return {"issuers": [{"issuer": ISSUER, "public_key": str(fed_certs / "issuer.pub"),
                         "agencies": [REQUESTER, "police"],
                         "roles": ["analyst", "supervisor", "ig_lead"]}]}


def _tls(fed_certs: Path, stem: str) -> dict[str, str]:
    return {"ca": str(fed_certs / "ca.pem"), "cert": str(fed_certs / f"{stem}.pem"),
            "key": str(fed_certs / f"{stem}.key")}


def _tls_reloaded(fed_certs: Path, stem: str) -> dict[str, Any]:
    """Broker and agents: replaced files are taken into use within a second."""
    return {**_tls(fed_certs, stem), "reload_seconds": 1}


def _revocation(fed_certs: Path) -> dict[str, Any]:
    """The CA's revocation list, checked by broker and agents (reloaded within a second)."""
    return {"crl": str(fed_certs / crl.CRL_FILE), "reload_seconds": 1}


def _audit(root: Path, writer: str) -> dict[str, Any]:
    """Each writer's own store and keys (created by `build`)."""
    keys = root / "keys" / writer
    return {"store": f"sqlite:///{root / 'audit' / f'{writer}.db'}", "writer_id": writer,
            "hash_key_file": str(keys / audit_keys.HASH_KEY),
            "signing_key_file": str(keys / audit_keys.SIGNING_KEY), "checkpoint_every": 50,
            "exchange_seconds": 2,
            "write_timeout_seconds": float(os.environ.get("MASH_AUDIT_WRITE_TIMEOUT", 5))}


def _policy(root: Path) -> dict[str, Any]:
    return {"bundle": str(root / "policy" / "bundle.json"),
            "trusted_signers": [str(root / "certs" / "ig-lead.pub")], "reload_seconds": 1}


def broker_section(ports: list[int]) -> dict[str, Any]:
    """Where agents and analysts find the brokers: `address`, or `addresses` for several."""
    if len(ports) == 1:
        return {"address": f"127.0.0.1:{ports[0]}", "server_name": "localhost"}
    return {"addresses": [f"127.0.0.1:{p}" for p in ports], "server_name": "localhost"}


def agent_config(root: Path, agency: str, data_file: Path, broker_port: int | list[int],
                 blind_keys: blind_setup.BlindKeys | None = None,
                 **overrides: Any) -> dict[str, Any]:
    fed_certs = root / "certs"
    spec = AGENCIES[agency]
    source = {k: v for k, v in spec["source"].items() if k != "file"}
    source["path"] = str(data_file.resolve())
    ports = broker_port if isinstance(broker_port, list) else [broker_port]
    cfg: dict[str, Any] = {
        "agency": agency,
        "name": spec["name"],
        "contact_route": spec["contact_route"],
        "broker": {**broker_section(ports), "heartbeat_seconds": 2,
                   "reconnect_initial_seconds": 0.2, "reconnect_max_seconds": 2},
        "tls": _tls_reloaded(fed_certs, f"{agency}-agent"),
        "revocation": _revocation(fed_certs),
        "auth": _auth(fed_certs),
        "sources": [source],
        "policy": _policy(root),
        "audit": _audit(root, agency),
    }
    if "require_any_of" in spec:
        cfg["search"] = {"require_any_of": spec["require_any_of"]}
    if blind_keys is not None:
        cfg["blind"] = blind_setup.agent_section(blind_keys, agency)
    cfg.update(overrides)
    if cfg.get("blind") is None:
        cfg.pop("blind", None)
    return cfg


def broker_writer(n: int) -> str:
    """The n-th broker's (from 1) audit writer id: broker, broker-2, broker-3..."""
    return "broker" if n == 1 else f"broker-{n}"


def broker_config(root: Path, port: int, agencies: list[str], n: int = 1,
                  **overrides: Any) -> dict[str, Any]:
    fed_certs = root / "certs"
    writer = broker_writer(n)
    audit = _audit(root, writer)
    # One hash key for every broker: the same subject hashes alike in every broker's chain.
    audit["hash_key_file"] = _audit(root, "broker")["hash_key_file"]
    cfg: dict[str, Any] = {
        "broker_id": "demo-broker" if n == 1 else f"demo-broker-{n}",
        "listen": f"127.0.0.1:{port}",
        "tls": _tls_reloaded(fed_certs, "broker-broker"),
        "revocation": _revocation(fed_certs),
        "auth": {**_auth(fed_certs), "require_certificate_binding": True},
        "rate_limit": {"lookups_per_minute": 120, "burst": 60},
        "agencies": [{"id": a, "name": AGENCIES[a]["name"]} for a in agencies],
        "policy": _policy(root),
        "audit": audit,
        "deadline_seconds": 5,
        "heartbeat_seconds": 2,
    }
    cfg.update(overrides)
    return cfg


def sign_policies(root: Path, src: Path = POLICIES, signer: str = "Demo IG lead") -> Path:
    """Build, check and sign the agreements under `src` into root/policy/bundle.json."""
    key_path = root / "certs" / "ig-lead.key"
    if not key_path.exists():
        private, public = signing.generate_key()
        write_atomic(key_path, private, private=True)
        write_atomic(key_path.with_suffix(".pub"), public)
    out = root / "policy" / "bundle.json"
    raw = bundle.build(src, serial=bundle.next_serial(bundle.serial_of(out))).to_json()
    signing.write_signed(out, raw, signing.sign(raw, signing.load_private_key(key_path), signer))
    return out


SQLITE = "sqlite:///"


def _portable(value: Any, base: Path) -> Any:
    """`value` with every absolute path under `base` (and SQLite URL to one) made relative to
    it: the loaders resolve relative paths against the config file's folder, so the folder
    can be moved as a whole."""
    if isinstance(value, dict):
        return {k: _portable(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_portable(v, base) for v in value]
    if isinstance(value, str):
        url = value.startswith(SQLITE)
        text = value[len(SQLITE):] if url else value
        path = Path(text)
        if path.is_absolute() and path.is_relative_to(base):
            relative = path.relative_to(base).as_posix()
            return SQLITE + relative if url else relative
    return value


def _dump(path: Path, data: dict[str, Any], relative: bool = False) -> Path:
    if relative:
        data = _portable(data, path.parent)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def build(root: Path, agencies: list[str], data_files: dict[str, Path],
          port: int | None = None, broker_overrides: dict[str, Any] | None = None,
          agent_overrides: dict[str, dict[str, Any]] | None = None,
          policies: Path | None = None, relative_paths: bool = False,
          brokers: int = 1) -> Federation:
    """Create CA, certificates, the issuer key and every config under `root`; with
    `brokers` > 1, that many brokers (own ports, ids and audit chains), every agent
    connected to all of them and the analyst's client able to use any.

    `relative_paths`: the configs name the files under `root` relative to it (`mash demo`
    does, so that its folder can be moved); tests that copy a config elsewhere want them
    absolute, the default."""
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    fed_certs = root / "certs"
    certs.create_ca(fed_certs, force=True)
    certs.issue(fed_certs, PeerIdentity("broker", "broker"), dns_names=("localhost",),
                ip_addresses=("127.0.0.1",))
    certs.issue(fed_certs, PeerIdentity("client", REQUESTER))
    for agency in agencies:
        certs.issue(fed_certs, PeerIdentity("agent", agency))
    crl.sign_crl(fed_certs)
    private, public = tokens.generate_issuer_key("ES256")
    issuer_key = fed_certs / "issuer.key"
    write_atomic(issuer_key, private, private=True)
    write_atomic(fed_certs / "issuer.pub", public)

    sign_policies(root, policies or POLICIES)
    (root / "audit").mkdir(exist_ok=True)
    for writer in [*(broker_writer(n) for n in range(1, brokers + 1)), *agencies]:
        audit_keys.write_keys(root / "keys" / writer, force=True)
    blind = blind_setup.create(root / "keys" / "blind", agencies)
    ports = [port or free_port(), *(free_port() for _ in range(brokers - 1))]
    # several brokers: a restarted one takes lookups once its agents are back (or after 5 s)
    several = {"wait_for_agents_seconds": 5} if brokers > 1 else {}
    configs = [_dump(root / ("broker.yaml" if n == 1 else f"broker-{n}.yaml"), broker_config(
        root, p, agencies, n, **{**several, **(broker_overrides or {})}), relative_paths)
        for n, p in enumerate(ports, 1)]
    fed = Federation(root=root, certs=fed_certs, issuer_key=issuer_key, broker_port=ports[0],
                     broker_config=configs[0], broker_configs=configs, broker_ports=ports,
                     client_config=root / "client.yaml",
                     blind_client_config=root / "client-blind.yaml", blind=blind)
    for agency in agencies:
        fed.agent_configs[agency] = _dump(root / f"agent-{agency}.yaml", agent_config(
            root, agency, data_files[agency], ports, blind,
            **(agent_overrides or {}).get(agency, {})), relative_paths)
    token_file = root / "analyst.jwt"
    write_atomic(token_file, fed.token(ttl=dt.timedelta(hours=8)).encode(), private=True)
    client = {
        "broker": broker_section(ports),
        "tls": _tls(fed_certs, f"{REQUESTER}-client"),
        "token_file": str(token_file),
    }
    _dump(fed.client_config, client, relative_paths)
    assert fed.blind_client_config is not None  # set above
    _dump(fed.blind_client_config, {**client, "blind": blind_setup.client_section(blind)},
          relative_paths)
    return fed
