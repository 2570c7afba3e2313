"""Disclosure beyond the agreement (issue 17, section 2), against a real broker and agents
on loopback with mTLS, real Rego and real audit trails:

- match metadata (matched_on, score) says nothing of fields the agreement does not release;
- the withheld list depends on the agreement alone, not on which fields hold data;
- a lookup whose aliases are other people's names releases only the person asked about;
- stages that need approval are answered only with a supervisor's valid, bound approval,
  which every agent checks itself (not just the broker).

One federation (police and health) serves the module. The agreements are the repository's,
with the police agreement also releasing the identifying fields at research (names, date of
birth, sex, PNC ID, the postcode as its district) and, for adult safeguarding at research,
all of them unmodified: the positive controls.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from mash import subject as subject_mod
from mash.client import BrokerClient, ClientConfig, split_name
from mash.demo import federation
from mash.identity import approvals
from mash.identity.tokens import generate_issuer_key
from mash.policy.model import Requester
from mash.v1 import agent_pb2, answer_pb2, lookup_pb2, lookup_pb2_grpc
from tests.helpers import ThreadedFederation, build_federation, lookup_request

R = answer_pb2
AGENCIES = ["police", "health"]
IDENTIFYING = {"given_name": "keep", "middle_names": "keep", "family_name": "keep",
               "aliases": "keep", "date_of_birth": "keep", "sex": "keep", "pnc_id": "keep"}
LEAH = dict(name="Leah Thompson", dob="2014-05-17")


def _policies(root: Path) -> Path:
    src = root / "policies"
    shutil.copytree(federation.POLICIES, src)
    path = src / "mous" / "police-mash-safeguarding.yaml"
    mou = yaml.safe_load(path.read_text())
    stages = mou["grants"][0]["purposes"]
    stages["child_safeguarding"]["stages"]["research"]["release"].update(
        IDENTIFYING, postcode="district")
    stages["adult_safeguarding"]["stages"]["research"]["release"].update(
        IDENTIFYING, postcode="keep")
    path.write_text(yaml.safe_dump(mou, sort_keys=False))
    return src


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedFederation]:
    root = tmp_path_factory.mktemp("disclosure")
    fed = build_federation(root / "fed", agencies=AGENCIES, policies=_policies(root))
    threaded = ThreadedFederation(fed, AGENCIES)
    try:
        yield threaded
    finally:
        threaded.close()


def _lookup(world: ThreadedFederation, request: lookup_pb2.LookupRequest,
            token: str | None = None) -> dict[str, answer_pb2.AgencyAnswer]:
    stub = lookup_pb2_grpc.LookupServiceStub(world.channel())
    metadata = (("authorization", f"Bearer {token or world.fed.token()}"),)
    response = stub.Lookup(request, metadata=metadata, timeout=10)
    return {a.agency_id: a for a in response.answers}


def _described(answer: answer_pb2.AgencyAnswer) -> list[tuple[list[str], float]]:
    return [(list(m.matched_on), m.score) for m in answer.matches]


# --- match metadata -----------------------------------------------------------------------

POSTCODES = {"full": "LS9 8AB", "sector": "LS9 8ZZ", "district": "LS9 1QQ",
             "elsewhere": "WF1 3LP"}


def test_triage_answers_say_nothing_of_how_unreleased_fields_compared(
        world: ThreadedFederation) -> None:
    """At triage police release no fields: whatever postcode is tried, the answer says only
    the band (the attack recovered a child's postcode from matched_on levels)."""
    seen = {}
    for kind, postcode in POSTCODES.items():
        police = _lookup(world, lookup_request(**LEAH, postcodes=(postcode,),
                                               stage="triage"))["police"]
        assert police.state == R.ANSWER_STATE_KNOWN, kind
        assert police.matches and all(not m.released for m in police.matches)
        seen[kind] = _described(police)
        assert police.searched.candidates_examined == 0
    assert all(d == [([], 0.0)] for d in seen.values()), seen
    # positive control: the matcher itself tells these postcodes apart (what leaked before)
    snapshot = world.run.agents["police"].handler.state.snapshot
    assert snapshot is not None
    raw = {kind: snapshot.matcher.search(subject_mod.from_proto(lookup_request(
        **LEAH, postcodes=(pc,)).subject)).candidates[0].matched_on
        for kind, pc in POSTCODES.items()}
    assert "postcode" in raw["full"] and "postcode_sector" in raw["sector"]
    assert "postcode_district" in raw["district"]


def test_levels_are_said_only_as_far_as_the_released_transform_shows(
        world: ThreadedFederation) -> None:
    """At research police release names, date of birth and sex unmodified and the postcode
    as its district: those levels are said, a full or sector agreement only as the
    district's, and the score (which reads the postcode) is withheld. Released unmodified
    (adult safeguarding here), the postcode level and the score are sent."""
    by_kind = {}
    for kind in ("full", "sector", "district", "elsewhere"):
        police = _lookup(world, lookup_request(**LEAH, postcodes=(POSTCODES[kind],)))["police"]
        assert police.state == R.ANSWER_STATE_KNOWN, kind
        match = police.matches[0]
        assert {"given_name", "family_name", "date_of_birth"} <= set(match.matched_on)
        assert match.score == 0.0
        by_kind[kind] = [m for m in match.matched_on if m.startswith("postcode")]
        assert {r.name: r.transform for r in match.released}["postcode"] == "district"
    assert by_kind == {"full": ["postcode_district"], "sector": ["postcode_district"],
                       "district": ["postcode_district"], "elsewhere": []}
    kept = _lookup(world, lookup_request(**LEAH, postcodes=("LS9 8AB",),
                                         purpose="adult_safeguarding"))["police"]
    assert kept.state == R.ANSWER_STATE_KNOWN
    assert "postcode" in kept.matches[0].matched_on and kept.matches[0].score > 0


# --- the withheld list ---------------------------------------------------------------------

def test_the_withheld_list_is_the_agreements_not_the_records(
        world: ThreadedFederation) -> None:
    """Health at triage releases cp_flag only. Leah's record has a safeguarding note and
    Darren's has none: both answers list the same withheld fields."""
    leah = _lookup(world, lookup_request(**LEAH, postcodes=("LS9 8AB",),
                                         stage="triage"))["health"]
    darren = _lookup(world, lookup_request("Darren Thompson", "1986-07-21", ("LS9 8AB",),
                                           stage="triage"))["health"]
    withheld = []
    for answer in (leah, darren):
        assert answer.state == R.ANSWER_STATE_KNOWN
        assert [f.name for f in answer.matches[0].released] == ["cp_flag"]
        withheld.append(sorted((f.name, f.reason) for f in answer.matches[0].withheld))
    assert withheld[0] == withheld[1]
    assert "safeguarding_note" in {name for name, _ in withheld[0]}
    # positive control: decided from the records' own fields, the lists differ (the leak)
    agent = world.run.agents["health"]
    snapshot = agent.handler.state.snapshot
    assert snapshot is not None
    records = [r for r in snapshot.store.records()
               if r.values.get("family_name") == "Thompson"
               and r.values.get("given_name") in ("Leah", "Darren")]
    decisions = agent.policy.snapshot()
    requester = Requester("mash", "analyst", "child_safeguarding", "triage")
    gate = decisions.gate(requester)
    old = [{w.name for w in d.withheld} for d in decisions.disclose(requester, gate, records)]
    assert old[0] != old[1]


# --- several people in one lookup ----------------------------------------------------------

def _aliases(request: lookup_pb2.LookupRequest, *names: str) -> lookup_pb2.LookupRequest:
    for name in names:
        request.subject.aliases.add().CopyFrom(split_name(name))
    return request


def test_aliases_naming_other_people_release_only_the_person_asked_about(
        world: ThreadedFederation) -> None:
    request = _aliases(lookup_request(**LEAH, postcodes=("LS9 8AB", "BD5 7HJ")),
                       "Darren Thompson", "Tyler Mason")
    police = _lookup(world, request)["police"]
    assert police.state == R.ANSWER_STATE_KNOWN
    assert len(police.matches) == 1
    released = {f.name: f.value for f in police.matches[0].released}
    assert released["given_name"] == "Leah" and released["date_of_birth"] == "2014-05-17"
    warning = " ".join(police.warnings)
    assert "2 record(s)" in warning and "date of birth" in warning
    for personal in ("darren", "tyler", "mason", "1986", "2009", "BD5"):
        assert personal.lower() not in warning.lower()
    # positive control: the matcher finds all three people (what was released before)
    snapshot = world.run.agents["police"].handler.state.snapshot
    assert snapshot is not None
    found = snapshot.matcher.search(subject_mod.from_proto(request.subject)).candidates
    assert {c.record.values["given_name"] for c in found} == {"Leah", "Darren", "Tyler"}


def test_without_a_date_of_birth_the_primary_name_decides(world: ThreadedFederation) -> None:
    """No date of birth to tell Leah and Darren apart: the alias-only record is left out."""
    request = _aliases(lookup_request("Leah Thompson", None, ("LS9 8AB",)), "Darren Thompson")
    police = _lookup(world, request)["police"]
    assert police.state == R.ANSWER_STATE_KNOWN
    assert [{f.name: f.value for f in m.released}["given_name"] for m in police.matches] == [
        "Leah"]
    assert any("disagree with the other records" in w for w in police.warnings)
    # control: asked about without the alias, nothing is left out
    alone = _lookup(world, lookup_request("Leah Thompson", None, ("LS9 8AB",)))["police"]
    assert not any("left out" in w for w in alone.warnings)


# --- stage approvals -----------------------------------------------------------------------

S47 = dict(**LEAH, postcodes=("LS9 8AB",), stage="s47", case="MASH-S47-1")


def _approval(world: ThreadedFederation, **over: Any) -> str:
    now = dt.datetime.now(dt.UTC)
    args: dict[str, Any] = dict(
        issuer=federation.ISSUER, approver="s.supervisor", agency="mash", role="supervisor",
        analyst="a.analyst", case_reference="MASH-S47-1", purpose="child_safeguarding",
        stage="s47", expires_at=now + dt.timedelta(hours=2))
    key = over.pop("key", world.fed.issuer_key.read_bytes())
    args.update(over)
    return approvals.issue_approval(key, **args)


def test_the_broker_refuses_early_without_an_approval(world: ThreadedFederation) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        _lookup(world, lookup_request(**S47))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "mash approval grant" in refused.value.details()
    request = lookup_request(**S47)
    request.approval = _approval(world, case_reference="MASH-OTHER")
    with pytest.raises(grpc.RpcError) as wrong:
        _lookup(world, request)
    assert wrong.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "another case reference" in wrong.value.details()


def test_with_a_valid_approval_s47_is_answered_and_audited(world: ThreadedFederation) -> None:
    request = lookup_request(**S47)
    request.approval = token = _approval(world)
    answers = _lookup(world, request)
    police = answers["police"]
    assert police.state == R.ANSWER_STATE_KNOWN
    assert "incident_summary" in {f.name for f in police.matches[0].released}
    digest = approvals.digest(token)
    broker = world.run.broker
    assert broker is not None and broker.audit is not None
    for log, writer in ((broker.audit, "broker"), (world.run.agents["police"].audit, "police")):
        bodies = [json.loads(r.body or "{}") for r in log.store.entries(writer)]
        details = [b["detail"] for b in bodies if b.get("case_reference") == "MASH-S47-1"]
        assert any(f"sha256:{digest}" in d and "s.supervisor" in d for d in details), writer


def _ask_agent(world: ThreadedFederation, approval: str,
               token: str | None = None) -> answer_pb2.AgencyAnswer:
    """Straight to the police agent's query handler, as a broker that skipped its own check
    would send it: the agent's check is the one that matters."""
    request = lookup_request(**S47)
    query = agent_pb2.Query(query_id="direct-1", lookup_id="direct",
                            analyst_token=token or world.fed.token(), subject=request.subject,
                            context=request.context, approval=approval)
    return world.run.agents["police"].handler.answer(query)


def test_every_agent_verifies_the_approval_itself(world: ThreadedFederation) -> None:
    now = dt.datetime.now(dt.UTC)
    stranger_key, _ = generate_issuer_key("ES256")
    bad = {
        "missing": ("", "needs a supervisor's approval"),
        "another case": (_approval(world, case_reference="MASH-9"), "another case reference"),
        "another stage": (_approval(world, stage="strategy"), "another stage"),
        "another purpose": (_approval(world, purpose="adult_safeguarding"),
                            "another purpose"),
        "another analyst": (_approval(world, analyst="b.analyst"), "another analyst"),
        "expired": (_approval(world, now=now - dt.timedelta(hours=3),
                              expires_at=now - dt.timedelta(hours=1)), "expired"),
        "not yet valid": (_approval(world, not_before=now + dt.timedelta(hours=1)),
                          "not valid yet"),
        "an analyst's": (_approval(world, role="analyst"), "needs a supervisor"),
        "self-approved": (_approval(world, approver="a.analyst"), "their own lookup"),
        "too long": (_approval(world, expires_at=now + dt.timedelta(days=30)), "longer"),
        "untrusted key": (_approval(world, key=stranger_key), "does not verify"),
        "an analyst token": (world.fed.token(role="supervisor"), "not a stage approval"),
        "garbage": ("not.a.jws", "malformed"),
    }
    for case, (approval, why) in bad.items():
        answer = _ask_agent(world, approval)
        assert answer.state == R.ANSWER_STATE_NOT_CHECKED, case
        assert answer.not_checked_reason == R.NOT_CHECKED_REASON_APPROVAL_REQUIRED == 11, case
        assert why in answer.detail, (case, answer.detail)
        assert not answer.matches
    good = _ask_agent(world, _approval(world))
    assert good.state == R.ANSWER_STATE_KNOWN  # positive control
    # stages that need no approval are answered without one
    request = lookup_request(**LEAH, postcodes=("LS9 8AB",))
    assert _lookup(world, request)["police"].state == R.ANSWER_STATE_KNOWN


def test_a_blind_lookup_carries_the_approval(world: ThreadedFederation) -> None:
    fed = world.fed
    assert fed.blind_client_config is not None
    with BrokerClient(ClientConfig.load(fed.blind_client_config)) as client:
        request = lookup_request(**S47)
        with pytest.raises(grpc.RpcError) as refused:
            client.lookup(request)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        request.approval = _approval(world)
        answers = {a.agency_id: a for a in client.lookup(request).answers}
    assert answers["police"].state == R.ANSWER_STATE_KNOWN


def _mash(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mash", *args], capture_output=True,
                          text=True, timeout=60, env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"})


def test_the_cli_grants_and_attaches_an_approval(world: ThreadedFederation,
                                                 tmp_path: Path) -> None:
    fed = world.fed
    out = tmp_path / "approval.jws"
    grant = ["approval", "grant", "--key", str(fed.issuer_key), "--issuer", federation.ISSUER,
             "--approver", "s.supervisor", "--agency", "mash", "--case", "MASH-S47-1",
             "--purpose", "child_safeguarding", "--stage", "s47", "--analyst", "a.analyst"]
    done = _mash(*grant, "--expires", "2h", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    shown = _mash("approval", "show", str(out))
    assert "approver: s.supervisor" in shown.stdout and "stage: s47" in shown.stdout
    lookup = ["lookup", "--name", "Leah Thompson", "--dob", "2014-05-17", "--postcode",
              "LS9 8AB", "--purpose", "child_safeguarding", "--stage", "s47", "--case",
              "MASH-S47-1", "--reason", "Strategy discussion agreed s47 enquiries",
              "--config", str(fed.client_config), "--json"]
    with_it = _mash(*lookup, "--approval", str(out))
    assert with_it.returncode == 0, with_it.stderr
    police = [a for a in json.loads(with_it.stdout)["answers"] if a["agency_id"] == "police"]
    assert police[0]["state"] == "ANSWER_STATE_KNOWN"
    without = _mash(*lookup)
    assert without.returncode == 2
    assert without.stderr.startswith("mash: error: failed_precondition: stage s47 needs")
    for args, message in (
            ([*lookup, "--approval", str(tmp_path / "none.jws")], "cannot read the approval"),
            ([*grant, "--expires", "soon", "--out", str(out)], "is not a duration"),
            ([*grant[:-2], "--analyst", "s.supervisor", "--out", str(out)],
             "cannot approve their own")):
        bad = _mash(*args)
        lines = [line for line in bad.stderr.splitlines() if line.strip()]
        assert bad.returncode == 2 and len(lines) == 1 and message in lines[0], bad.stderr
        assert "Traceback" not in bad.stderr
