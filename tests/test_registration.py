"""Agencies registered through the signed bundle: `agents:` in policies/federation.yaml decides
which agencies the broker accepts, lists and asks; signing a new bundle registers one or
withdraws one (its live stream closed) without restarting anything."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mash.broker import config as broker_config
from mash.broker.server import Broker
from mash.demo import federation
from mash.errors import ConfigError
from mash.policy.agreements import load_federation
from mash.policy.errors import AgreementError
from mash.v1 import answer_pb2
from tests.helpers import Running, build_federation, lookup_request, wait_until

R = answer_pb2
AGENCIES = ["police", "health"]


def policies_registering(tmp_path: Path, agents: list[str] | None) -> Path:
    """A copy of the project's policies whose federation.yaml registers `agents`."""
    src = tmp_path / f"policies-{'-'.join(agents or ['none'])}"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(federation.POLICIES, src)
    if agents is not None:
        with (src / "federation.yaml").open("a", encoding="utf-8") as fh:
            fh.write(f"agents: [{', '.join(agents)}]\n")
    return src


def registered_fed(tmp_path: Path, agents: list[str]) -> federation.Federation:
    port = federation.free_port()
    quick = {"broker": {**federation.broker_section([port]), "heartbeat_seconds": 2,
                        "reconnect_initial_seconds": 0.1, "reconnect_max_seconds": 0.3}}
    return build_federation(tmp_path / "fed", AGENCIES, background=5, port=port,
                            policies=policies_registering(tmp_path, agents),
                            agent_overrides={a: quick for a in AGENCIES})


def without_broker_agencies(fed: federation.Federation) -> federation.Federation:
    """broker.yaml with no `agencies:` list: the bundle is the only registration."""
    cfg = yaml.safe_load(fed.broker_config.read_text())
    del cfg["agencies"]
    fed.broker_config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return fed


async def answered_by(run: Running) -> set[str]:
    response = await run.analyst().lookup(lookup_request())
    return {a.agency_id for a in response.answers}


async def listed(run: Running) -> dict[str, bool]:
    return {a.agency_id: a.online for a in (await run.analyst().agents()).agents}


async def test_signing_a_bundle_registers_and_withdraws_agencies_without_a_restart(
        tmp_path: Path) -> None:
    fed = without_broker_agencies(registered_fed(tmp_path, ["police"]))
    run = Running(fed)
    try:
        broker = await run.start_broker()
        assert broker.routing.source.startswith("bundle ")
        await run.start_agent("police")
        health = await run.start_agent("health", wait=False)
        # only police is registered: health's agent is refused, and health is not asked
        assert await listed(run) == {"police": True}
        assert await answered_by(run) == {"police"}
        assert not health.link.connected

        # the IG lead signs a bundle registering health as well: no restart
        federation.sign_policies(fed.root, policies_registering(tmp_path, AGENCIES))
        await wait_until(lambda: "health" in broker.routing.registered(), timeout=20)
        await wait_until(lambda: health.link.connected, timeout=20)
        assert await listed(run) == {"police": True, "health": True}
        assert await answered_by(run) == {"police", "health"}
        response = await run.analyst().lookup(lookup_request())
        assert {a.agency_id: a.agency_name for a in response.answers}["health"] == \
            "Leeds Health Partnership"

        # and withdraws police: its live stream is closed and it is no longer asked
        police = run.agents["police"]
        federation.sign_policies(fed.root, policies_registering(tmp_path, ["health"]))
        await wait_until(lambda: "police" not in broker.routing.registered(), timeout=20)
        await wait_until(lambda: not police.link.connected, timeout=20)
        assert await listed(run) == {"health": True}
        assert await answered_by(run) == {"health"}
    finally:
        await run.stop()


async def test_a_broker_with_no_agency_registered_anywhere_will_not_start(
        tmp_path: Path) -> None:
    fed = without_broker_agencies(build_federation(
        tmp_path / "fed", AGENCIES, background=5, policies=policies_registering(tmp_path, None)))
    broker = Broker(broker_config.load(fed.broker_config))
    with pytest.raises(ConfigError, match="no agency is registered: name them under `agents:`"):
        await broker.start()
    # positive control: broker.yaml's own list still registers agencies (the bundle names none)
    fed = build_federation(tmp_path / "fed2", AGENCIES, background=5,
                           policies=policies_registering(tmp_path, None))
    run = Running(fed)
    try:
        broker = await run.start_broker()
        assert broker.routing.source == "broker.yaml"
        assert sorted(broker.routing.registered()) == sorted(AGENCIES)
    finally:
        await run.stop()


def test_federation_agents_must_be_known_agencies(tmp_path: Path) -> None:
    src = policies_registering(tmp_path, ["police", "social_care"])
    with pytest.raises(AgreementError, match=r"agents.*'social_care' is not one of the agencies"):
        load_federation(src / "federation.yaml")
    src = policies_registering(tmp_path, ["police", "police"])
    with pytest.raises(AgreementError, match="an agency is named twice"):
        load_federation(src / "federation.yaml")
    assert load_federation(policies_registering(tmp_path, ["police"]) / "federation.yaml"
                           ).agents == ("police",)
