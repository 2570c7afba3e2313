"""Certificates and keys replaced while broker and agents run, and the copied-key attack.

The attack (from the independent attack run): a copy of an agency's agent key and
certificate held that agency's stream for good. Now the CA revokes the certificate, the agency
gets a new one, and the copy can no longer hold the stream while the real agent does.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from structlog.testing import capture_logs

from mash.agent import config as agent_config
from mash.agent.service import Agent
from mash.demo import federation
from mash.identity import certs, crl, pinning
from mash.identity.names import PeerIdentity
from mash.identity.revocation import RevocationError
from mash.v1 import answer_pb2
from tests.helpers import Running, build_federation, client_tls, lookup_request, wait_until

AGENCIES = ["police", "health"]


@pytest.fixture
async def live(tmp_path: Path):  # type: ignore[no-untyped-def]
    fed = build_federation(tmp_path / "fed", agencies=AGENCIES, background=20)
    async with Running.up(fed, AGENCIES) as run:
        yield run


def _serial(pem: bytes) -> int:
    return x509.load_pem_x509_certificate(pem).serial_number


def _presented_serial(fed: federation.Federation) -> int:
    presented = pinning.fetch_sync(f"127.0.0.1:{fed.broker_port}", client_tls(fed))
    return _serial(presented.pem)


async def test_broker_takes_a_new_certificate_without_a_restart(live: Running) -> None:
    fed = live.fed
    old = _serial((fed.certs / "broker-broker.pem").read_bytes())
    assert await asyncio.to_thread(_presented_serial, fed) == old
    # a key that is not the certificate's is refused, and the files in use are kept
    good_key = (fed.certs / "broker-broker.key").read_bytes()
    with capture_logs() as logs:
        shutil.copy(fed.certs / "police-agent.key", fed.certs / "broker-broker.key")
        assert await asyncio.to_thread(_presented_serial, fed) == old
    assert any(e["event"] == "tls_reload_refused" and "is not the key of" in e["reason"]
               for e in logs)
    (fed.certs / "broker-broker.key").write_bytes(good_key)
    certs.issue(fed.certs, PeerIdentity("broker", "broker"), dns_names=("localhost",),
                ip_addresses=("127.0.0.1",))
    new = _serial((fed.certs / "broker-broker.pem").read_bytes())
    assert new != old
    assert await asyncio.to_thread(_presented_serial, fed) == new
    # agents and analysts carry on with the broker's new certificate
    assert (await live.analyst().lookup(lookup_request())).answers
    assert live.broker is not None and live.broker.tls.loaded >= 2


async def test_agent_takes_a_new_certificate_without_a_restart(live: Running) -> None:
    fed, broker = live.fed, live.broker
    assert broker is not None
    session = broker.registry.get("police")
    assert session is not None
    old = _serial(session.certificate)
    certs.issue(fed.certs, PeerIdentity("agent", "police"))
    new = _serial((fed.certs / "police-agent.pem").read_bytes())

    def renewed() -> bool:
        s = broker.registry.get("police")
        return s is not None and bool(s.certificate) and _serial(s.certificate) == new

    await wait_until(renewed, timeout=15)
    assert new != old
    assert (await live.analyst().lookup(lookup_request())).answers


def _copied_agent(fed: federation.Federation, agency: str) -> Path:
    """What a thief of the agent's key runs: the same certificate and key, copied away."""
    loot = fed.root / "stolen"
    loot.mkdir()
    for suffix in ("pem", "key"):
        shutil.copy(fed.certs / f"{agency}-agent.{suffix}", loot / f"{agency}-agent.{suffix}")
    cfg = yaml.safe_load(fed.agent_configs[agency].read_text())
    cfg["tls"]["cert"] = str(loot / f"{agency}-agent.pem")
    cfg["tls"]["key"] = str(loot / f"{agency}-agent.key")
    cfg["audit"]["store"] = f"sqlite:///{loot / 'audit.db'}"
    path = loot / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


async def test_a_copied_agent_key_cannot_hold_the_stream_once_revoked(live: Running) -> None:
    fed, broker = live.fed, live.broker
    assert broker is not None
    stolen = (fed.certs / "police-agent.pem").read_bytes()
    thief = Agent(agent_config.load(_copied_agent(fed, "police")))
    try:
        with capture_logs() as logs:
            await thief.start()
            # the copy takes the stream (the attack as found)
            await wait_until(lambda: thief.link.connected, timeout=15)
            assert any(e["event"] == "agent_replaced" for e in logs)
            # the response: revoke the copied certificate, give the agency a new one
            crl.revoke(fed.certs, cert=fed.certs / "police-agent.pem", reason="key-compromise")
            certs.issue(fed.certs, PeerIdentity("agent", "police"))
            fresh = (fed.certs / "police-agent.pem").read_bytes()
            revocation = broker.registry.revocation
            assert revocation is not None

            def broker_read_the_list() -> bool:
                try:
                    revocation.check(stolen)
                except RevocationError:
                    return True
                return False

            await wait_until(broker_read_the_list, timeout=10)  # within reload_seconds

            def held_by_the_agency() -> bool:
                s = broker.registry.get("police")
                return s is not None and s.certificate == fresh

            await wait_until(held_by_the_agency, timeout=20)
            # and it stays with the agency while the thief keeps trying
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                s = broker.registry.get("police")
                assert s is None or s.certificate != stolen
                await asyncio.sleep(0.05)
        assert held_by_the_agency() and not thief.link.connected
        refused = [e for e in logs if e["event"] == "agent_refused"
                   and "has been revoked" in e.get("reason", "")]
        assert refused, "the thief's reconnection was not refused"
        response = await live.analyst().lookup(lookup_request())
        police = next(a for a in response.answers if a.agency_id == "police")
        assert police.state != answer_pb2.ANSWER_STATE_NOT_CHECKED, police.detail  # it answered
    finally:
        await thief.stop()
