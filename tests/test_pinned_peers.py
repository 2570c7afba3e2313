"""Pinned peers: certificate kinds, and agents and clients that talk only to a pinned broker.

The attack: the console's HTTPS certificate (signed by the federation's CA) presented as a
broker. Each refusal has a positive control: the real broker certificate, same everything.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from structlog.testing import capture_logs

from mash.agent import config as agent_config
from mash.agent.service import Agent
from mash.broker import config as broker_config
from mash.broker.server import Broker
from mash.client import BrokerClient, ClientConfig
from mash.demo import federation
from mash.errors import ConfigError, IdentityError
from mash.grpc_options import channel_options
from mash.identity import certs, pinning
from mash.identity.names import PeerIdentity, parse_identity_uri
from mash.identity.tls import TlsFiles
from mash.v1 import agent_pb2_grpc
from tests.helpers import build_federation, client_tls, lookup_request
from tests.test_cli import one_error_line, run_mash
from tests.test_identity import _connect, _refusal


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _dns(cert: x509.Certificate) -> list[str]:
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sans.get_values_for_type(x509.DNSName)


def _usages(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_each_kind_has_its_own_identity_and_usages(tmp_path: Path) -> None:
    certs.create_ca(tmp_path)
    issued = {kind: certs.issue(tmp_path, PeerIdentity(kind, name),  # type: ignore[arg-type]
                                dns_names=hosts, ip_addresses=ips)
              for kind, name, hosts, ips in (
                  ("agent", "police", (), ()), ("client", "police", (), ()),
                  ("broker", "broker", ("localhost",), ("127.0.0.1",)),
                  ("console", "console", ("localhost",), ("127.0.0.1",)))}
    for kind, paths in issued.items():
        ident = certs.identity_from_pem(paths.cert.read_bytes())
        assert ident is not None and ident.kind == kind
        assert parse_identity_uri(ident.uri) == ident
    assert issued["console"].cert.name == "console-console.pem"
    console, broker = _cert(issued["console"].cert), _cert(issued["broker"].cert)
    assert _usages(console) == [ExtendedKeyUsageOID.SERVER_AUTH]  # never a client
    assert ExtendedKeyUsageOID.SERVER_AUTH in _usages(broker)
    assert _usages(_cert(issued["agent"].cert)) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    # the names pinned channels ask for: a console never carries a broker's
    assert {"broker.broker.id.mash.invalid", "broker.id.mash.invalid"} <= set(_dns(broker))
    assert not any(n.endswith("broker.id.mash.invalid") for n in _dns(console))
    assert "console.console.id.mash.invalid" in _dns(console)


@pytest.mark.parametrize(("args", "message"), [
    (["issue", "--agency", "police", "--kind", "console"], "mash certs console"),
    (["issue", "--agency", "police", "--kind", "robot"], "use agent or client"),
    (["console", "--name", "Console!"], "console name 'Console!' is not valid"),
    (["broker", "--host", "x.broker.id.mash.invalid"], "reserved for MASH identities"),
    (["console", "--ip", "not-an-ip"], "give --ip as an IPv4 or IPv6 address"),
])
def test_certs_cli_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    d = str(tmp_path / "certs")
    assert run_mash("certs", "init", "--dir", d)[0] == 0
    code, _, err = run_mash("certs", *args, "--dir", d)
    assert code == 2 if "--kind" in args else code != 0
    assert message in one_error_line(err)


def test_certs_cli_issues_console_and_client_kinds(tmp_path: Path) -> None:
    d = tmp_path / "certs"
    assert run_mash("certs", "init", "--dir", str(d))[0] == 0
    code, out, _ = run_mash("certs", "console", "--dir", str(d))
    assert code == 0 and "spiffe://mash.exchange/console/console" in out
    code, out, _ = run_mash("certs", "issue", "--agency", "police", "--kind", "client",
                            "--dir", str(d))
    assert code == 0 and "spiffe://mash.exchange/agency/police/client" in out
    code, out, _ = run_mash("certs", "show", str(d / "console-console.pem"))
    assert code == 0 and "kind: console" in out


@pytest.mark.parametrize(("uri", "message"), [
    ("spiffe://mash.exchange/console/console", "is a console identity, never a broker"),
    ("https://broker.example", "is not a MASH identity"),
])
def test_a_pin_that_is_not_a_broker_is_a_config_error(tmp_path: Path, uri: str,
                                                      message: str) -> None:
    fed = build_federation(tmp_path / "fed", agencies=["police"], background=20)
    cfg = yaml.safe_load(fed.agent_configs["police"].read_text())
    cfg["broker"]["identities"] = [uri]
    fed.agent_configs["police"].write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as err:
        agent_config.load(fed.agent_configs["police"])
    assert "broker: identities[0]" in str(err.value) and message in str(err.value)


def _impostor(fed: federation.Federation, monkeypatch: pytest.MonkeyPatch) -> Broker:
    """A real broker serving the console's HTTPS certificate (what a thief of that key could
    run, with the broker's own check of its certificate taken out), on the federation's
    broker address."""
    monkeypatch.setattr("mash.broker.server._a_broker", lambda _identity: None)
    paths = certs.issue(fed.certs, PeerIdentity("console", "console"),
                        dns_names=("localhost",), ip_addresses=("127.0.0.1",))
    cfg = broker_config.load(fed.broker_config)
    cfg.tls = TlsFiles(ca=cfg.tls.ca, cert=paths.cert, key=paths.key)
    return Broker(cfg)


def _pin(fed: federation.Federation, agency: str, uris: list[str]) -> None:
    path = fed.agent_configs[agency]
    cfg = yaml.safe_load(path.read_text())
    cfg["broker"]["identities"] = uris
    path.write_text(yaml.safe_dump(cfg))


async def _refused_then_stopped(agent: Agent, seconds: float = 2.0) -> None:
    await asyncio.sleep(seconds)
    assert not agent.link.connected
    await agent.stop()


@pytest.fixture
def small(tmp_path: Path) -> federation.Federation:
    return build_federation(tmp_path / "fed", agencies=["police", "health"], background=20)


async def test_agent_refuses_the_console_certificate_as_a_broker(small, monkeypatch) -> None:
    impostor = _impostor(small, monkeypatch)
    await impostor.start()
    agent = Agent(agent_config.load(small.agent_configs["police"]))
    try:
        with capture_logs() as logs:
            await agent.start()
            await _refused_then_stopped(agent)
        refusals = [e for e in logs if e["event"] == "broker_refused"]
        assert refusals, logs
        assert "presents console:console (spiffe://mash.exchange/console/console)" in (
            refusals[0]["reason"])
        assert impostor.registry.get("police") is None  # it never got a stream
    finally:
        await impostor.stop(grace=0.1)
    # positive control: the real broker certificate on the same address
    broker = Broker(broker_config.load(small.broker_config))
    await broker.start()
    agent = Agent(agent_config.load(small.agent_configs["police"]))
    try:
        await agent.start()
        await agent.wait_ready(timeout=20)
        assert broker.registry.get("police") is not None
    finally:
        await agent.stop()
        await broker.stop(grace=0.1)


async def test_agent_accepts_only_the_brokers_it_names(small) -> None:
    _pin(small, "police", ["spiffe://mash.exchange/broker/other"])
    _pin(small, "health", ["spiffe://mash.exchange/broker/other",
                           "spiffe://mash.exchange/broker/broker"])
    broker = Broker(broker_config.load(small.broker_config))
    await broker.start()
    police = Agent(agent_config.load(small.agent_configs["police"]))
    health = Agent(agent_config.load(small.agent_configs["health"]))
    try:
        with capture_logs() as logs:
            await police.start()
            await health.start()
            await health.wait_ready(timeout=20)  # pinned among two: connects
            await _refused_then_stopped(police, 1.0)
        reasons = [e["reason"] for e in logs if e["event"] == "broker_refused"]
        assert reasons and "presents broker:broker" in reasons[0]
        assert "spiffe://mash.exchange/broker/other" in reasons[0]
        assert broker.registry.get("police") is None
        assert broker.registry.get("health") is not None
    finally:
        await health.stop()
        await broker.stop(grace=0.1)


def _client(fed: federation.Federation) -> BrokerClient:
    cfg = ClientConfig.load(fed.client_config)
    return BrokerClient(cfg)


async def test_client_refuses_the_console_certificate_as_a_broker(small, monkeypatch) -> None:
    impostor = _impostor(small, monkeypatch)
    await impostor.start()
    try:
        with _client(small) as client, pytest.raises(pinning.PeerRefused) as err:
            await asyncio.to_thread(client.lookup, lookup_request(), 5.0)
        assert "presents console:console" in str(err.value)
        assert "broker.identities: any broker" in str(err.value)
    finally:
        await impostor.stop(grace=0.1)
    broker = Broker(broker_config.load(small.broker_config))  # positive control
    await broker.start()
    try:
        with _client(small) as client:
            agents = await asyncio.to_thread(client.list_agents, 5.0)
        assert {a.agency_id for a in agents.agents} == {"police", "health"}
    finally:
        await broker.stop(grace=0.1)


async def test_cli_names_the_refused_identity_in_one_line(small, monkeypatch) -> None:
    impostor = _impostor(small, monkeypatch)
    await impostor.start()
    try:
        code, _, err = await asyncio.to_thread(
            run_mash, "agents", "--config", str(small.client_config))
    finally:
        await impostor.stop(grace=0.1)
    assert code != 0
    assert "presents console:console" in one_error_line(err)


async def test_broker_refuses_a_console_certificate_as_agent_or_client(small) -> None:
    certs.issue(small.certs, PeerIdentity("console", "console"), out_stem="console-as-peer")
    broker = Broker(broker_config.load(small.broker_config))
    await broker.start()
    try:
        tls = client_tls(small, "console-as-peer")
        # a console certificate is serverAuth only: the TLS handshake itself refuses it as a
        # client; and the positive control, the agent's own certificate, connects
        channel, stub = _agent_stub_for(small, tls)
        err = await _refusal(stub)
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        await channel.close()
        channel, stub = _agent_stub_for(small, client_tls(small, "police-agent"))
        call = await _connect(stub)
        first = await call.read()
        assert first.welcome.agency_id == "police"
        call.cancel()
        await channel.close()
    finally:
        await broker.stop(grace=0.1)


def _agent_stub_for(fed: federation.Federation, tls: TlsFiles,
                    ) -> tuple[grpc.aio.Channel, agent_pb2_grpc.AgentServiceStub]:
    channel = grpc.aio.secure_channel(f"127.0.0.1:{fed.broker_port}",
                                      tls.channel_credentials(),
                                      options=channel_options("localhost"))
    return channel, agent_pb2_grpc.AgentServiceStub(channel)


def test_unreachable_broker_is_one_line(tmp_path: Path) -> None:
    fed = build_federation(tmp_path / "fed", agencies=["police"], background=20)
    tls = client_tls(fed)
    with pytest.raises(IdentityError) as err:
        pinning.fetch_sync(f"127.0.0.1:{federation.free_port()}", tls, timeout=1)
    assert "cannot reach the broker" in str(err.value)
    with pytest.raises(IdentityError) as err:
        pinning.fetch_sync("no-port-here", tls)
    assert "is not host:port" in str(err.value)


def test_console_https_certificate_must_be_a_console_kind(small) -> None:
    from mash.console import config as console_config
    from tests.console_support import console_config as write_console_config

    path = write_console_config(small)
    assert console_config.load(path).server_tls.cert.name == "console-console.pem"  # control
    broker_tls = {"cert": str(small.certs / "broker-broker.pem"),
                  "key": str(small.certs / "broker-broker.key")}
    path = write_console_config(small, server_tls=broker_tls)
    with pytest.raises(ConfigError) as err:
        console_config.load(path)
    assert "server_tls: cert" in str(err.value)
    assert "names broker:broker, not a console: issue one with `mash certs console`" in str(
        err.value)


def _pin_client(fed: federation.Federation, uris: list[str]) -> None:
    cfg = yaml.safe_load(fed.client_config.read_text())
    cfg["broker"]["identities"] = uris
    fed.client_config.write_text(yaml.safe_dump(cfg))


async def test_client_accepts_only_the_brokers_it_names(small) -> None:
    broker = Broker(broker_config.load(small.broker_config))
    await broker.start()
    try:
        _pin_client(small, ["spiffe://mash.exchange/broker/other"])
        with _client(small) as client, pytest.raises(pinning.PeerRefused) as err:
            await asyncio.to_thread(client.list_agents, 5.0)
        assert "presents broker:broker" in str(err.value)
        assert "broker.identities: spiffe://mash.exchange/broker/other" in str(err.value)
        for pins in (["spiffe://mash.exchange/broker/broker"],  # the one pinned
                     ["spiffe://mash.exchange/broker/other",  # one of two (first handshake)
                      "spiffe://mash.exchange/broker/broker"]):
            _pin_client(small, pins)
            with _client(small) as client:
                agents = await asyncio.to_thread(client.list_agents, 5.0)
            assert len(agents.agents) == 2
    finally:
        await broker.stop(grace=0.1)


def test_revocation_config_bad_input_is_one_line(small) -> None:
    path = small.agent_configs["police"]
    cfg = yaml.safe_load(path.read_text())
    cfg["revocation"] = {"crl": str(small.root / "missing-crl.pem")}
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as err:
        agent_config.load(path)
    assert "revocation: crl: file not found" in str(err.value)
    cfg["revocation"] = {"crl": str(small.certs / "crl.pem"), "reload_seconds": 0}
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as err:
        agent_config.load(path)
    assert "reload_seconds: must be at least 0.1" in str(err.value)


async def test_broker_will_not_serve_a_console_certificate(small) -> None:
    cfg = broker_config.load(small.broker_config)
    paths = certs.issue(small.certs, PeerIdentity("console", "console"))
    cfg.tls = TlsFiles(ca=cfg.tls.ca, cert=paths.cert, key=paths.key)
    with pytest.raises(IdentityError) as err:
        await Broker(cfg).start()
    assert "does not identify a broker: issue one with `mash certs broker`" in str(err.value)
