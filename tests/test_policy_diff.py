"""`mash policy diff`: planted changes in real agreements, decided by the real compiled policy."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from mash.demo.federation import POLICIES
from mash.policy import bundle as bundle_mod
from mash.policy.decisions import LoadedPolicy
from mash.policy.diff import diff
from mash.policy.engine import RegoEngine
from mash.policy.space import decide_all, universe
from tests.policy_helpers import copy_policies, edit_mou, police_stages
from tests.test_policy_cli import mash

TODAY = dt.date(2026, 6, 1)


def load(src: Path) -> LoadedPolicy:
    built = bundle_mod.build(src)
    return LoadedPolicy(built, RegoEngine(built))


@pytest.fixture(scope="module")
def shipped() -> LoadedPolicy:
    return load(POLICIES)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return copy_policies(tmp_path / "policies")


def test_the_space_is_every_cell_and_agrees_with_the_gate(shipped: LoadedPolicy) -> None:
    space = universe(shipped.bundle)
    decided = decide_all(shipped, space, TODAY)
    assert len(decided) == space.size() == 9 * 8 * 3 * 7
    police = [d for c, d in decided.items() if c.owner == "police" and c.requester == "mash"
              and c.role == "analyst" and c.purpose == "child_safeguarding"]
    assert [d.answer for d in police] == ["known", "known", "not_asked", "known"]  # no strategy
    research = next(d for c, d in decided.items() if c.owner == "police"
                    and c.requester == "mash" and c.role == "analyst" and c.stage == "research")
    assert research.released["last_incident_date"].transform == "month"
    assert ("restricted", "Y") in research.restrictions
    assert ("restricted", "N") not in research.restrictions
    education = [d for c, d in decided.items() if c.owner == "education"
                 and c.stage == "triage" and c.requester == "mash" and c.role == "analyst"
                 and c.purpose == "child_safeguarding"]
    assert [d.answer for d in education] == ["withheld"]
    ig = [d for c, d in decided.items() if c.role == "ig_lead"]
    assert ig and all(d.answer == "not_asked" for d in ig)


def test_identical_policies_differ_nowhere(shipped: LoadedPolicy, src: Path) -> None:
    assert diff(shipped, load(src), TODAY) == []


def test_a_planted_release_is_reported_exactly_once(shipped: LoadedPolicy, src: Path) -> None:
    edit_mou(src, "police-mash-safeguarding",
             lambda d: police_stages(d)["research"]["release"].update(officer_in_case="keep"))
    changes = diff(shipped, load(src), TODAY)
    assert len(changes) == 1, changes
    c = changes[0]
    assert (c.kind, c.owner, c.requester, c.roles, c.purpose, c.stage, c.field, c.new) == (
        "released", "police", "mash", ("analyst", "supervisor"), "child_safeguarding",
        "research", "officer_in_case", "keep")
    # and the reverse is the opposite change, once
    back = diff(load(src), shipped, TODAY)
    assert [(b.kind, b.field, b.old) for b in back] == [
        ("not_released", "officer_in_case", "keep")]


def test_transform_parameters_answer_level_and_restrictions(shipped: LoadedPolicy,
                                                            src: Path) -> None:
    def change(d: dict) -> None:
        stages = d["grants"][0]["purposes"]["child_safeguarding"]["stages"]
        stages["research"]["release"]["attendance_pct"]["bounds"] = [0, 60, 90]
        stages["s47"]["answer"] = "existence"
        d["grants"][0]["withhold_when"] = [{"field": "restricted", "equals": ["Y"],
                                            "reason": "restricted record"}]
    edit_mou(src, "education-mash-safeguarding", change)
    changes = diff(shipped, load(src), TODAY)
    kinds = sorted((c.kind, c.stage, c.field) for c in changes)
    assert kinds == sorted(
        [("transform", "research", "attendance_pct"), ("answer", "s47", "")]
        + [("not_released", "s47", f) for f in ("attendance_pct", "exclusions",
                                                "school_name", "sen_status", "year_group")]
        + [("restriction_added", s, "restricted") for s in ("research",)]), kinds
    transform = next(c for c in changes if c.kind == "transform")
    assert "[0, 50, 90]" in transform.old and "[0, 60, 90]" in transform.new
    assert "below 50%" in transform.new  # the labels are shown with the bounds
    answer = next(c for c in changes if c.kind == "answer")
    assert (answer.old, answer.new) == ("known", "withheld")


def test_agreements_removed_and_redated(shipped: LoadedPolicy, src: Path) -> None:
    (src / "mous" / "probation-mash-adults.yaml").unlink()
    edit_mou(src, "police-mash-safeguarding", lambda d: d.update(review_by="2027-06-30"))
    changes = diff(shipped, load(src), TODAY)
    assert [(c.kind, c.agreement) for c in changes if c.kind.startswith("agreement_")] == [
        ("agreement_removed", "probation-mash-adults"),
        ("agreement_redated", "police-mash-safeguarding")]
    routing = [c for c in changes if c.kind == "routing"]
    assert routing and all(c.owner == "probation" and c.new == "not asked" for c in routing)
    # expiry as on the day: an agreement that lapses before --today stops being asked
    edit_mou(src, "health-mash-safeguarding", lambda d: d.update(
        review_by="2026-03-01", expires="2026-05-01"))
    changes = diff(shipped, load(src), TODAY)
    lapsed = [c for c in changes if c.kind == "routing" and c.owner == "health"]
    assert lapsed and all(c.new == "not asked" for c in lapsed)
    assert ("agreement health-mash-safeguarding: expires 2030-12-31 -> 2026-05-01 (expired "
            "as on 2026-06-01: it shares nothing)") in [c.text for c in changes]


def test_cli_table_json_and_bundle_files(src: Path, tmp_path: Path) -> None:
    key = tmp_path / "ig.key"
    assert mash("policy", "keygen", "--out", str(key))[0] == 0
    signed = tmp_path / "bundle.json"
    code, _, err = mash("policy", "sign", "--src", str(src), "--key", str(key), "--signer",
                        "IG", "--out", str(signed))
    assert code == 0, err
    edit_mou(src, "police-mash-safeguarding",
             lambda d: police_stages(d)["triage"].update(answer="existence"))
    code, out, err = mash("policy", "diff", str(signed), str(src), "--json", "--today",
                          "2026-06-01")
    assert code == 0, err
    doc = json.loads(out)
    assert {(c["kind"], c["stage"], c["old"], c["new"]) for c in doc["changes"]} == {
        ("answer", "triage", "known", "withheld")}
    code, out, _ = mash("policy", "diff", str(signed), str(src), "--today", "2026-06-01")
    assert code == 0 and "1 change(s)" in out and "police" in out
    code, _, err = mash("policy", "diff", str(signed), str(tmp_path / "missing"))
    assert code == 2 and "neither a policies folder nor a bundle file" in err
    (tmp_path / "junk.json").write_text("{")
    code, _, err = mash("policy", "diff", str(tmp_path / "junk.json"), str(src))
    assert code != 0 and len(err.strip().splitlines()) == 1 and "not a policy bundle" in err
