"""Revocation: the federation CA's CRL, checked by broker and agents, reloaded while running.

Every refusal here has a positive control on the same running federation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from structlog.testing import capture_logs

from mash.broker import config as broker_config
from mash.broker.server import Broker
from mash.demo import federation
from mash.errors import IdentityError
from mash.files import write_atomic
from mash.identity import certs, crl
from mash.identity.names import PeerIdentity
from tests.helpers import Running, build_federation, client_tls, lookup_request, wait_until
from tests.test_cli import one_error_line, run_mash

AGENCIES = ["police", "health"]


@pytest.fixture
def small(tmp_path: Path) -> federation.Federation:
    return build_federation(tmp_path / "fed", agencies=AGENCIES, background=20)


@pytest.fixture
async def live(small: federation.Federation):  # type: ignore[no-untyped-def]
    async with Running.up(small, AGENCIES) as run:
        yield run


def _serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def test_revoke_and_crl_commands(tmp_path: Path) -> None:
    d = tmp_path / "certs"
    assert run_mash("certs", "init", "--dir", str(d))[0] == 0
    assert run_mash("certs", "issue", "--agency", "police", "--dir", str(d))[0] == 0
    code, out, _ = run_mash("certs", "crl", "--dir", str(d))
    assert code == 0 and "revoked: 0" in out
    code, out, _ = run_mash("certs", "revoke", str(d / "police-agent.pem"), "--reason",
                            "key-compromise", "--dir", str(d))
    serial = _serial(d / "police-agent.pem")
    assert code == 0 and f"revoked serial {serial:x}" in out
    code, out, _ = run_mash("certs", "revoke", "--serial", "0x1f", "--dir", str(d))
    assert code == 0
    listed = crl.load_crl(d / "crl.pem")
    assert {e.serial_number for e in listed} == {serial, 0x1F}
    reasons = {e.serial_number: e.extensions.get_extension_for_class(x509.CRLReason).value.reason
               for e in listed}
    assert reasons[serial] == x509.ReasonFlags.key_compromise
    code, out, _ = run_mash("certs", "crl", "--dir", str(d), "--days", "2")  # re-sign: kept
    assert code == 0 and "revoked: 2" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--serial", "xyz"], "is not hexadecimal"),
    ([], "name the certificate to revoke"),
    (["--serial", "1f", "--reason", "bored"], "reason 'bored' is not one of"),
    (["FOREIGN"], "was not issued by the CA in"),
    (["MISSING"], "cannot read certificate"),
])
def test_revoke_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    d, other = tmp_path / "certs", tmp_path / "other"
    certs.create_ca(d)
    certs.create_ca(other, common_name="Someone else's CA")
    foreign = certs.issue(other, PeerIdentity("agent", "police")).cert
    args = [str(foreign) if a == "FOREIGN" else str(tmp_path / "nope.pem") if a == "MISSING"
            else a for a in args]
    code, _, err = run_mash("certs", "revoke", *args, "--dir", str(d))
    assert code != 0
    assert message in one_error_line(err)


async def test_a_revoked_client_is_refused_without_a_restart(live: Running) -> None:
    fed = live.fed
    certs.issue(fed.certs, PeerIdentity("client", "mash"), out_stem="mash-laptop-2")
    revoked = live.analyst(token=fed.token(bind="mash-laptop-2"),
                           tls=client_tls(fed, "mash-laptop-2"))
    kept = live.analyst()
    assert (await revoked.lookup(lookup_request())).answers  # before: both answer
    crl.revoke(fed.certs, cert=fed.certs / "mash-laptop-2.pem", reason="key-compromise")
    await asyncio.sleep(2.5)  # the broker reloads the list each second
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await revoked.lookup(lookup_request())
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "has been revoked by the federation's CA" in err.value.details()
    assert (await kept.lookup(lookup_request())).answers  # positive control


async def test_a_revoked_agent_stream_is_closed_and_stays_closed(live: Running) -> None:
    fed = live.fed
    assert live.broker is not None
    with capture_logs() as logs:
        crl.revoke(fed.certs, cert=fed.certs / "police-agent.pem", reason="key-compromise")
        await wait_until(lambda: live.broker.registry.get("police") is None, timeout=10)
        await asyncio.sleep(2)  # the agent tries again, and is refused again
    assert live.broker.registry.get("police") is None
    assert live.broker.registry.get("health") is not None  # positive control
    closed = [e for e in logs if e["event"] == "agent_stream_revoked"]
    assert closed and closed[0]["agency"] == "police" and "revoked" in closed[0]["reason"]
    refused = [e for e in logs if e["event"] == "agent_refused" and "revoked" in e["reason"]]
    assert refused, "the agent's reconnection was not refused"


def _short_crl(fed: federation.Federation, seconds: float) -> None:
    """A list signed by the CA that is valid for only `seconds` more."""
    ca, key = certs.load_ca(fed.certs)
    now = dt.datetime.now(dt.UTC)
    current = crl.load_crl(fed.certs / crl.CRL_FILE)
    listed = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
              .last_update(now - dt.timedelta(minutes=1))
              .next_update(now + dt.timedelta(seconds=seconds))
              .add_extension(x509.CRLNumber(100), critical=False))
    for entry in current:
        listed = listed.add_revoked_certificate(entry)
    write_atomic(fed.certs / crl.CRL_FILE,
                 listed.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))


async def test_a_list_past_its_next_update_fails_closed(live: Running) -> None:
    fed = live.fed
    assert live.broker is not None
    _short_crl(fed, 4)
    await asyncio.sleep(1.5)
    analyst = live.analyst()
    assert (await analyst.lookup(lookup_request())).answers  # still valid: answers
    with capture_logs() as logs:
        await wait_until(lambda: live.broker.registry.online == 0, timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await analyst.lookup(lookup_request())
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "expired at" in err.value.details() and "mash certs crl" in err.value.details()
    assert any(e["event"] == "revocation_list_expired" for e in logs)
    # the CA signs a fresh list: streams and lookups come back, with no restart
    crl.sign_crl(fed.certs)
    await wait_until(lambda: live.broker.registry.online == len(AGENCIES), timeout=20)
    assert (await analyst.lookup(lookup_request())).answers


async def test_a_revoked_broker_certificate_is_dropped_by_agents(live: Running) -> None:
    fed = live.fed
    assert live.broker is not None
    with capture_logs() as logs:
        crl.revoke(fed.certs, cert=fed.certs / "broker-broker.pem")
        await wait_until(lambda: not any(a.link.connected for a in live.agents.values()),
                         timeout=10)
        await asyncio.sleep(1.5)
    assert not any(a.link.connected for a in live.agents.values())
    assert any(e["event"] == "broker_stream_dropped" and "revoked" in e["reason"]
               for e in logs)
    assert any(e["event"] == "broker_refused" and "revoked" in e["reason"] for e in logs)


async def test_a_list_not_signed_by_the_ca_stops_the_broker_starting(small) -> None:
    other = small.root / "other-ca"
    certs.create_ca(other, common_name="Someone else's CA")
    (small.certs / crl.CRL_FILE).write_bytes(crl.load_crl(crl.sign_crl(other)).public_bytes(
        serialization.Encoding.PEM))
    with pytest.raises(IdentityError) as err:
        await Broker(broker_config.load(small.broker_config)).start()
    assert "revocation.crl" in str(err.value) and "not signed by the federation's CA" in str(
        err.value)


def test_serve_with_an_unusable_list_is_one_line(small) -> None:
    other = small.root / "other-ca"
    certs.create_ca(other, common_name="Someone else's CA")
    (small.certs / crl.CRL_FILE).write_bytes((crl.sign_crl(other)).read_bytes())
    for role, config in (("broker", small.broker_config),
                         ("agent", small.agent_configs["police"])):
        code, _, err = run_mash(role, "serve", "--config", str(config))
        assert code != 0
        line = one_error_line(err)
        assert "revocation.crl" in line and "not signed by the federation's CA" in line


def test_serve_with_a_key_that_is_not_the_certificates_is_one_line(small) -> None:
    import shutil
    shutil.copy(small.certs / "police-agent.key", small.certs / "broker-broker.key")
    code, _, err = run_mash("broker", "serve", "--config", str(small.broker_config))
    assert code != 0
    assert "broker-broker.key is not the key of" in one_error_line(err)
