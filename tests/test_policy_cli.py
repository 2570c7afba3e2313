"""The IG lead's commands: check, test, explain, sign, show."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mash.demo.federation import POLICIES
from tests.policy_helpers import copy_policies, edit_mou

MASH = [sys.executable, "-m", "mash"]


def mash(*args: str) -> tuple[int, str, str]:
    r = subprocess.run([*MASH, *args], capture_output=True, text=True,
                       env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    return r.returncode, r.stdout, r.stderr


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return copy_policies(tmp_path / "policies")


def test_check_passes_on_the_shipped_agreements(fed) -> None:
    code, out, err = mash("policy", "check", "--src", str(POLICIES), "--agent-config",
                          str(fed.agent_configs["police"]), "--today", "2026-06-01")
    assert code == 0, out + err
    assert "police-mash-safeguarding" in out and "0 error(s)" in out


def test_check_reports_expiry_missing_basis_and_unmapped_fields(src: Path, fed) -> None:
    edit_mou(src, "health-mash-safeguarding", lambda d: d["grants"][0]["purposes"][
        "child_safeguarding"].update(lawful_basis={"article_6": "6(1)(e)"}))
    edit_mou(src, "police-mash-safeguarding", lambda d: d["grants"][0]["purposes"][
        "child_safeguarding"]["stages"]["research"]["release"].update(shoe_size="keep"))
    code, out, _ = mash("policy", "check", "--src", str(src), "--agent-config",
                        str(fed.agent_configs["police"]), "--today", "2031-01-01")
    assert code == 1
    assert "no complete lawful basis" in out
    assert "police's agent does not map shoe_size" in out
    assert "EXPIRED" in out


def test_check_warns_when_review_is_overdue(src: Path) -> None:
    code, out, _ = mash("policy", "check", "--src", str(src), "--today", "2028-06-01")
    assert code == 0
    assert "review overdue since 2027-12-31" in out


def test_check_names_a_load_error_in_one_line(src: Path) -> None:
    edit_mou(src, "police-mash-safeguarding", lambda d: d["grants"][0]["purposes"][
        "child_safeguarding"]["stages"]["research"]["release"].update(markers="shred"))
    code, _, err = mash("policy", "check", "--src", str(src))
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "unknown transform 'shred'" in lines[0]
    assert "police-mash-safeguarding.yaml" in lines[0]


def test_test_command(src: Path) -> None:
    code, out, _ = mash("policy", "test", "--src", str(src))
    assert code == 0 and "0 failed" in out
    cases = yaml.safe_load((src / "tests" / "police.yaml").read_text())
    cases[1]["expect"]["released"]["last_incident_date"] = "2026-03-14"  # wrong on purpose
    (src / "tests" / "police.yaml").write_text(yaml.safe_dump(cases))
    code, out, _ = mash("policy", "test", "--src", str(src))
    assert code == 1 and "1 failed" in out and "FAIL" in out


def test_explain(src: Path) -> None:
    code, out, _ = mash("policy", "explain", "--owner", "police", "--purpose",
                        "child_safeguarding", "--stage", "research", "--src", str(src))
    assert code == 0
    assert "police-mash-safeguarding" in out and "DPA 2018 Part 3" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines()
            if line.startswith("│")}
    assert "month" in rows["last_incident_date"] and "yes" in rows["last_incident_date"]
    assert "not released at research" in rows["officer_in_case"]
    assert "answers KNOWN when it holds the person, with no field at this stage" not in out
    code, out, _ = mash("policy", "explain", "--owner", "police", "--purpose",
                        "child_safeguarding", "--stage", "triage", "--src", str(src))
    assert "answers KNOWN when it holds the person, with no field at this stage" in out
    code, out, _ = mash("policy", "explain", "--owner", "education", "--purpose",
                        "child_safeguarding", "--stage", "research", "--src", str(src))
    rows = {line.split("│")[1].strip(): line for line in out.splitlines()
            if line.startswith("│")}
    assert "from 0: 'below 50%'" in rows["attendance_pct"]  # the bucket's bounds and labels
    code, out, _ = mash("policy", "explain", "--owner", "education", "--purpose",
                        "child_safeguarding", "--stage", "triage", "--src", str(src))
    assert "answers WITHHELD when it holds the person" in out
    assert "NOT_KNOWN when it does not (answer: existence)" in " ".join(out.split())
    code, out, _ = mash("policy", "explain", "--owner", "probation", "--purpose",
                        "child_safeguarding", "--stage", "research", "--src", str(src))
    assert "is NOT asked (NOT_CHECKED): no agreement" in out


def test_keygen_sign_and_show(src: Path, tmp_path: Path) -> None:
    key = tmp_path / "ig.key"
    assert mash("policy", "keygen", "--out", str(key))[0] == 0
    out_path = tmp_path / "dist" / "bundle.json"
    code, out, err = mash("policy", "sign", "--src", str(src), "--key", str(key), "--signer",
                          "Jo Bloggs, IG lead", "--out", str(out_path))
    assert code == 0, err
    assert out_path.exists() and Path(str(out_path) + ".sig").exists()
    code, out, _ = mash("policy", "show", "--bundle", str(out_path), "--trusted",
                        str(key.with_suffix(".pub")))
    assert code == 0 and "signed by Jo Bloggs, IG lead" in out
    assert "police-mash-safeguarding" in out


def test_sign_refuses_what_fails_its_tests(src: Path, tmp_path: Path) -> None:
    key = tmp_path / "ig.key"
    mash("policy", "keygen", "--out", str(key))
    edit_mou(src, "police-mash-safeguarding", lambda d: d["grants"][0]["purposes"][
        "child_safeguarding"]["stages"]["triage"].update(release={"markers": "keep"}))
    code, _, err = mash("policy", "sign", "--src", str(src), "--key", str(key), "--signer",
                        "x", "--out", str(tmp_path / "b.json"))
    assert code != 0 and "not signing: policy test" in err
    assert not (tmp_path / "b.json").exists()
