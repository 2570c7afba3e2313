"""Agreements in a running federation: fail closed, hot reload, the owner decides."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml

from mash import signing
from mash.demo import federation
from mash.v1 import answer_pb2
from tests.helpers import Running, lookup_request
from tests.policy_helpers import copy_policies, edit_mou, police_stages

R = answer_pb2


def by_agency(response):
    return {a.agency_id: a for a in response.answers}


async def until_revision(running: Running, agency: str, revision: str) -> None:
    for _ in range(100):
        if running.agents[agency].policy.revision == revision:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{agency} did not load revision {revision}")


def resign(fed, src: Path) -> str:
    path = federation.sign_policies(fed.root, src)
    from mash.policy import bundle

    return bundle.parse(path.read_bytes()).revision


async def test_answers_name_the_policy_revision(running: Running) -> None:
    response = await running.analyst().lookup(lookup_request())
    revision = running.broker.routing.revision
    assert response.routing_revision == revision
    for answer in response.answers:
        if answer.state != R.ANSWER_STATE_NOT_CHECKED or answer.not_checked_reason not in (
                R.NOT_CHECKED_REASON_AGENT_OFFLINE, R.NOT_CHECKED_REASON_NO_AGREEMENT):
            assert answer.policy_revision == revision, answer.agency_id
    agents = {a.agency_id: a for a in (await running.analyst().agents()).agents}
    assert agents["police"].policy_revision == revision


async def test_hot_reload_changes_what_is_released(running: Running, tmp_path: Path) -> None:
    src = copy_policies(tmp_path / "src")
    edit_mou(src, "police-mash-safeguarding",
             lambda d: police_stages(d)["research"]["release"].pop("markers"))
    revision = resign(running.fed, src)
    await until_revision(running, "police", revision)
    police = by_agency(await running.analyst().lookup(lookup_request()))["police"]
    assert police.policy_revision == revision
    released = {f.name for f in police.matches[0].released}
    assert "markers" not in released and "last_incident_type" in released
    assert "markers" in {f.name for f in police.matches[0].withheld}


async def test_a_tampered_bundle_is_ignored_and_the_last_good_stays(running: Running) -> None:
    before = running.agents["police"].policy.revision
    path = running.fed.root / "policy" / "bundle.json"
    path.write_bytes(path.read_bytes().replace(b'"month"', b'"keep"'))
    for _ in range(40):  # give the watcher (1 s poll) time to see and refuse it
        if running.agents["police"].policy.store.error:
            break
        await asyncio.sleep(0.05)
    assert "altered after signing" in running.agents["police"].policy.store.error
    police = by_agency(await running.analyst().lookup(lookup_request()))["police"]
    assert police.state == R.ANSWER_STATE_KNOWN and police.policy_revision == before
    dates = {f.name: f.value for f in police.matches[0].released}
    assert len(dates["last_incident_date"]) == 7  # still generalised to the month


async def test_expired_agreement_shares_nothing(running: Running, tmp_path: Path) -> None:
    src = copy_policies(tmp_path / "src")

    def expire(d):
        d["valid_from"], d["review_by"], d["expires"] = "2020-01-01", "2020-06-01", "2021-01-01"
    edit_mou(src, "health-mash-safeguarding", expire)
    revision = resign(running.fed, src)
    await until_revision(running, "health", revision)
    for _ in range(40):
        if running.broker.routing.revision == revision:
            break
        await asyncio.sleep(0.05)
    health = by_agency(await running.analyst().lookup(lookup_request()))["health"]
    assert health.state == R.ANSWER_STATE_NOT_CHECKED
    assert health.not_checked_reason == R.NOT_CHECKED_REASON_POLICY_ERROR
    assert "expired on 2021-01-01" in health.detail
    assert not health.matches


async def test_review_overdue_is_a_warning_on_the_answer(running: Running,
                                                         tmp_path: Path) -> None:
    src = copy_policies(tmp_path / "src")
    edit_mou(src, "police-mash-safeguarding", lambda d: d.update(review_by="2026-02-01"))
    revision = resign(running.fed, src)
    await until_revision(running, "police", revision)
    police = by_agency(await running.analyst().lookup(lookup_request()))["police"]
    assert police.state == R.ANSWER_STATE_KNOWN
    assert list(police.warnings) == [
        "agreement police-mash-safeguarding was due for review on 2026-02-01"]


async def test_the_data_owner_decides_not_the_broker(running: Running, tmp_path: Path) -> None:
    """The broker's bundle routes to csc, but csc's own bundle has no such grant."""
    src = copy_policies(tmp_path / "src")
    (src / "mous" / "csc-mash-safeguarding.yaml").unlink()
    own = tmp_path / "csc-policy" / "bundle.json"
    own.parent.mkdir()
    from mash.policy import bundle

    raw = bundle.build(src).to_json()
    own.write_bytes(raw)
    signing.signature_path(own).write_bytes(signing.sign(
        raw, signing.load_private_key(running.fed.certs / "ig-lead.key"), "csc IG lead"))
    cfg_path = running.fed.agent_configs["csc"]
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["policy"]["bundle"] = str(own)
    cfg_path.write_text(yaml.safe_dump(cfg))
    await running.stop_agent("csc")
    await running.start_agent("csc")
    csc = by_agency(await running.analyst().lookup(lookup_request()))["csc"]
    assert csc.state == R.ANSWER_STATE_NOT_CHECKED
    assert csc.not_checked_reason == R.NOT_CHECKED_REASON_NO_AGREEMENT
    assert "no agreement lets mash (analyst) ask csc" in csc.detail


async def test_agent_without_a_valid_bundle_shares_nothing(running: Running) -> None:
    cfg_path = running.fed.agent_configs["housing"]
    cfg = yaml.safe_load(cfg_path.read_text())
    unsigned = running.fed.root / "policy" / "unsigned.json"
    unsigned.write_bytes((running.fed.root / "policy" / "bundle.json").read_bytes())
    cfg["policy"]["bundle"] = str(unsigned)
    cfg_path.write_text(yaml.safe_dump(cfg))
    await running.start_agent("housing")
    housing = by_agency(await running.analyst().lookup(lookup_request()))["housing"]
    assert housing.not_checked_reason == R.NOT_CHECKED_REASON_POLICY_ERROR
    assert "not signed" in housing.detail
    assert housing.policy_revision == "none"


async def test_broker_without_a_valid_bundle_asks_nobody(fed) -> None:
    (fed.root / "policy" / "bundle.json.sig").unlink()
    run = Running(fed)
    await run.start_broker()
    await run.start_agent("police")
    try:
        response = await run.analyst().lookup(lookup_request())
        assert response.routing_revision == "none"
        for answer in response.answers:
            assert answer.state == R.ANSWER_STATE_NOT_CHECKED
            assert answer.not_checked_reason == R.NOT_CHECKED_REASON_POLICY_ERROR
            assert "not signed" in answer.detail
    finally:
        await run.stop()
