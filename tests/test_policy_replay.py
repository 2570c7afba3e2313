"""`mash policy replay` over a real audit trail: real broker and agents, real lookups."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from mash.v1 import answer_pb2
from tests.helpers import Running, lookup_request
from tests.policy_helpers import copy_policies, edit_mou, police_stages
from tests.test_policy_cli import mash

R = answer_pb2


def police(response):  # type: ignore[no-untyped-def]
    return next(a for a in response.answers if a.agency_id == "police")


async def test_replay_reports_the_answers_a_new_bundle_would_change(running: Running,
                                                                    tmp_path: Path) -> None:
    analyst = running.analyst()
    research = police(await analyst.lookup(lookup_request()))
    assert research.state == R.ANSWER_STATE_KNOWN
    released = {f.name for f in research.matches[0].released}
    assert {"markers", "last_incident_date"} <= released
    assert police(await analyst.lookup(lookup_request(stage="triage"))).state == \
        R.ANSWER_STATE_KNOWN
    assert police(await analyst.lookup(lookup_request(name="Nobody Atall", dob="1950-01-01",
                                                      postcodes=("ZZ9 9ZZ",)))).state == \
        R.ANSWER_STATE_NOT_KNOWN
    config = str(running.fed.agent_configs["police"])

    # positive control: the bundle in force changes nothing
    same = copy_policies(tmp_path / "same")
    code, out, err = await asyncio.to_thread(mash, "policy", "replay", "--config", config,
                                             "--bundle", str(same), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["replayed"], doc["changed"], doc["changes"], doc["not_redecided"]) == (
        3, 0, [], {})

    new = copy_policies(tmp_path / "new")

    def change(d: dict) -> None:
        stages = police_stages(d)
        stages["research"]["release"].pop("markers")
        stages["research"]["release"]["officer_in_case"] = "keep"
        stages["research"]["release"]["last_incident_date"] = "year"
        stages.pop("triage")
    edit_mou(new, "police-mash-safeguarding", change)
    code, out, err = await asyncio.to_thread(mash, "policy", "replay", "--config", config,
                                             "--bundle", str(new), "--json")
    assert code == 0, err
    doc = json.loads(out)
    got = {(c["requester"], c["stage"], c["change"], c["field"], c["detail"], c["count"])
           for c in doc["changes"]}
    assert got == {
        ("mash", "research", "no longer released", "markers", "keep", 1),
        ("mash", "research", "transform changed", "last_incident_date", "month -> year", 1),
        ("mash", "research", "newly released (if the record holds it)", "officer_in_case",
         "keep", 1),
        ("mash", "triage", "KNOWN -> NOT_CHECKED", "", "", 1),
    }
    assert (doc["replayed"], doc["changed"]) == (3, 2)
    # the table, and a period with nothing in it
    code, out, _ = await asyncio.to_thread(mash, "policy", "replay", "--config", config,
                                           "--bundle", str(new))
    assert code == 0 and "3 answer(s) replayed: 2 would change" in out
    code, out, _ = await asyncio.to_thread(mash, "policy", "replay", "--config", config,
                                           "--bundle", str(new), "--since", "2999-01-01")
    assert code == 0 and "0 answer(s) replayed" in out
    code, _, err = await asyncio.to_thread(mash, "policy", "replay", "--config", config,
                                           "--bundle", str(new), "--since", "yesterday")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "yesterday" in err


def test_what_cannot_be_redecided_is_said_so() -> None:
    import datetime as dt

    from mash.audit.entry import AuditEntry, Outcome
    from mash.demo.federation import POLICIES
    from mash.policy import bundle as bundle_mod
    from mash.policy.decisions import LoadedPolicy
    from mash.policy.engine import RegoEngine
    from mash.policy.replay import Replay, replay_entry

    built = bundle_mod.build(POLICIES)
    policy = LoadedPolicy(built, RegoEngine(built))
    day = dt.date(2026, 6, 1)

    def entry(agency: str, stage: str, state: str, reason: str = "",
              purpose: str = "child_safeguarding") -> AuditEntry:
        return AuditEntry(event="query", requester_agency="mash", role="analyst",
                          purpose=purpose, stage=stage,
                          outcomes=(Outcome(agency=agency, state=state, reason=reason),))
    out = Replay("police")
    replay_entry(policy, "police", entry("police", "research", "WITHHELD"), day, out)
    replay_entry(policy, "police", entry("police", "research", "NOT_CHECKED",
                                         "agent_offline"), day, out)
    assert out.changed == 0 and dict(out.not_redecided) == {
        "withheld then, a stage that releases fields now: the record's values decide": 1,
        "not searched then (agent_offline)": 1}
    # refused by the policy then, allowed now: searched, with a result nobody knows
    out = Replay("probation")
    replay_entry(policy, "probation", entry("probation", "research", "NOT_CHECKED",
                                            "no_agreement", "adult_safeguarding"), day, out)
    assert [(k.change, n) for k, n in out.rows()] == [("NOT_CHECKED -> searched", 1)]
    # and education at triage says only WITHHELD, whatever was answered before
    out = Replay("education")
    replay_entry(policy, "education", entry("education", "triage", "KNOWN"), day, out)
    assert [(k.change, n) for k, n in out.rows()] == [("KNOWN -> WITHHELD", 1)]
