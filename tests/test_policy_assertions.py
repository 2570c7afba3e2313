"""Rules that must never be broken: proven by check, enforced by sign, with counterexamples."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mash.policy import assertions
from mash.policy import bundle as bundle_mod
from mash.policy.decisions import LoadedPolicy
from mash.policy.engine import RegoEngine
from tests.policy_helpers import copy_policies, edit_mou, police_stages
from tests.test_policy_cli import mash

TODAY = dt.date(2026, 6, 1)


def load(src: Path) -> LoadedPolicy:
    built = bundle_mod.build(src)
    return LoadedPolicy(built, RegoEngine(built))


def prove(src: Path) -> dict[str, assertions.Proof]:
    policy = load(src)
    return {p.assertion.rule: p for p in assertions.prove(
        policy, assertions.load(src, policy.bundle), TODAY)}


def write_rules(src: Path, rules: list[dict[str, Any]]) -> None:
    (src / "assertions" / "extra.yaml").write_text(yaml.safe_dump({"assertions": rules}))


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return copy_policies(tmp_path / "policies")


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "ig.key"
    assert mash("policy", "keygen", "--out", str(path))[0] == 0
    return path


def test_the_shipped_rules_hold(src: Path) -> None:
    proofs = prove(src)
    assert len(proofs) == 7 and all(p.holds for p in proofs.values())
    assert proofs["nothing is released without a lawful basis"].cells == 9 * 8 * 3 * 7


def test_a_planted_release_breaks_the_rule_with_its_counterexample(src: Path) -> None:
    edit_mou(src, "police-mash-safeguarding",
             lambda d: police_stages(d)["research"]["release"].update(incident_summary="keep"))
    proofs = prove(src)
    broken = [p for p in proofs.values() if not p.holds]
    assert [p.assertion.rule for p in broken] == [
        "police never release incident summaries before s47"]
    c = broken[0].counterexample
    assert c is not None
    assert (c.cell.owner, c.cell.requester, c.cell.role, c.cell.purpose, c.cell.stage,
            c.field, c.transform) == ("police", "mash", "analyst", "child_safeguarding",
                                      "research", "incident_summary", "keep")


def test_only_as_never_asked_and_lawful_basis(src: Path) -> None:
    edit_mou(src, "police-mash-safeguarding",
             lambda d: police_stages(d)["s47"]["release"].update(last_incident_date="keep"))
    edit_mou(src, "probation-mash-adults", lambda d: d["grants"][0]["purposes"].update(
        child_safeguarding={**d["grants"][0]["purposes"]["adult_safeguarding"],
                            "stages": {"triage": {"answer": "known"}}}))
    proofs = prove(src)
    dates = proofs["police incident dates leave only to the month"].counterexample
    assert dates is not None and (dates.cell.stage, dates.field, dates.transform) == (
        "s47", "last_incident_date", "keep")
    asked = proofs["probation is never asked about children"].counterexample
    assert asked is not None and (asked.cell.owner, asked.cell.stage, asked.field) == (
        "probation", "triage", "")
    assert proofs["nothing is released without a lawful basis"].holds
    # The rule reads the agreements' own lawful basis, not the library's verdict: a library
    # that stops checking the basis is caught.
    rego = src / "mash" / "agreements.rego"
    rego.write_text(rego.read_text().replace(
        "complete_basis(b) if {\n\tb.part_3 != \"\"\n}", "complete_basis(b) if {\n\ttrue\n}"))
    edit_mou(src, "health-mash-safeguarding", lambda d: d["grants"][0]["purposes"][
        "child_safeguarding"].update(lawful_basis={"article_6": "6(1)(e)"}))
    lawful = prove(src)["nothing is released without a lawful basis"].counterexample
    assert lawful is not None and lawful.cell.owner == "health" and \
        lawful.cell.purpose == "child_safeguarding"


def test_a_misspelt_name_is_an_error_not_a_rule_that_holds(src: Path) -> None:
    write_rules(src, [{"rule": "x", "never_release": "anything", "stage": "s74"}])
    code, _, err = mash("policy", "check", "--src", str(src))
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "extra.yaml" in err and "unknown 's74'" in err
    write_rules(src, [{"rule": "x", "never_release": "anything", "never_asked": True}])
    code, _, err = mash("policy", "check", "--src", str(src))
    assert code == 1 and "exactly one of" in err
    write_rules(src, [{"rule": "x", "never_release": ["NHS number"]}])
    code, _, err = mash("policy", "check", "--src", str(src))
    assert code == 1 and "give a field, a list of fields, or anything" in err
    write_rules(src, [{"rule": "x", "never_release": "nhs_numbr", "owner": "health"}])
    code, out, _ = mash("policy", "check", "--src", str(src), "--today", "2026-06-01")
    assert code == 0 and "no agency names nhs_numbr" not in out
    assert "no agreement names nhs_numbr, so it holds trivially" in out


def test_check_reports_a_broken_rule(src: Path) -> None:
    code, out, _ = mash("policy", "check", "--src", str(src), "--today", "2026-06-01")
    assert code == 0 and "BROKEN" not in out and "holds over 72 cell(s)" in out
    write_rules(src, [{"rule": "health releases nothing at triage",
                       "never_release": "anything", "owner": "health", "stage": "triage"}])
    code, out, _ = mash("policy", "check", "--src", str(src), "--today", "2026-06-01")
    assert code == 1
    assert ("'health releases nothing at triage' is broken: health releases cp_flag (keep) "
            "to mash (analyst) for child_safeguarding at triage under "
            "health-mash-safeguarding") in " ".join(out.split())


def test_sign_refuses_a_broken_rule_and_records_what_it_changes(src: Path, key: Path,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "dist" / "bundle.json"
    sign = ("policy", "sign", "--src", str(src), "--key", str(key), "--signer", "Jo, IG lead",
            "--out", str(out))
    code, stdout, err = mash(*sign)
    assert code == 0, err
    assert "no bundle to replace" in stdout
    first = json.loads(out.read_bytes())
    assert [e["replaces"] for e in first["change_log"]] == [""]
    # a planted violation: refused, with the exact counterexample, and nothing written
    edit_mou(src, "health-mash-safeguarding", lambda d: d["grants"][0]["purposes"][
        "adult_safeguarding"]["stages"]["triage"].update(release={"gp_practice": "keep"}))
    code, _, err = mash(*sign)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert ("not signing:" in err and "'health releases nothing at adult safeguarding triage'"
            " is broken: health releases gp_practice (keep) to mash (analyst) for "
            "adult_safeguarding at triage under health-mash-safeguarding") in err
    assert json.loads(out.read_bytes()) == first
    # a permitted change: signed, the diff printed and kept in the change log
    edit_mou(src, "health-mash-safeguarding", lambda d: d["grants"][0]["purposes"][
        "adult_safeguarding"]["stages"]["triage"].pop("release"))
    edit_mou(src, "police-mash-safeguarding", lambda d: d["grants"][0]["purposes"][
        "adult_safeguarding"]["stages"]["research"]["release"].update(officer_in_case="keep"))
    code, stdout, err = mash(*sign)
    assert code == 0, err
    assert "1 change(s)" in stdout and "officer_in_case" in stdout
    log = json.loads(out.read_bytes())["change_log"]
    assert len(log) == 2 and log[1]["replaces"] == first["revision"]
    assert [(c["kind"], c["field"], c["purpose"], c["stage"]) for c in log[1]["changes"]] == [
        ("released", "officer_in_case", "adult_safeguarding", "research")]
    assert len(log[1]["assertions"]) == 7
    code, shown, _ = mash("policy", "show", "--bundle", str(out), "--trusted",
                          str(key.with_suffix(".pub")))
    assert code == 0 and "signed by Jo, IG lead" in shown
    assert f"replacing {first['revision']}: 1 change(s), 7 rule(s) proven" in shown
    assert "officer_in_case newly released (keep)" in shown
