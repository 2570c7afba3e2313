"""`mash policy test --coverage`: what the agreements grant that no IG test case exercises."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

from mash.policy import bundle as bundle_mod
from mash.policy.decisions import LoadedPolicy
from mash.policy.engine import RegoEngine
from mash.policy.testing import coverage
from tests.policy_helpers import copy_policies
from tests.test_policy_cli import mash

TODAY = dt.date(2026, 6, 1)
EXCLUSIONS = ("education-mash-safeguarding: education -> mash for child_safeguarding at "
              "research: exclusions")


def gaps(src: Path):  # type: ignore[no-untyped-def]
    built = bundle_mod.build(src)
    return coverage(src, LoadedPolicy(built, RegoEngine(built)), TODAY)


def test_coverage_names_what_no_case_exercises(tmp_path: Path) -> None:
    src = copy_policies(tmp_path / "policies")
    before = gaps(src)
    assert EXCLUSIONS in before.fields
    assert "csc-mash-safeguarding: csc -> mash for child_safeguarding" in before.grants
    assert ("health-mash-safeguarding: health -> mash for child_safeguarding at s47"
            in before.stages)
    # exercised stages and fields are not listed
    assert not any("police -> mash for child_safeguarding at research" in f
                   for f in before.fields + before.stages)
    cases = yaml.safe_load((src / "tests" / "partners.yaml").read_text())
    cases.append({"name": "education release exclusions at research", "owner": "education",
                  "requester": "mash", "role": "analyst", "purpose": "child_safeguarding",
                  "stage": "research", "today": "2026-06-01",
                  "record": {"exclusions": "1 fixed-term"},
                  "expect": {"answer": "known", "released": {"exclusions": "1 fixed-term"}}})
    cases.append({"name": "csc at triage", "owner": "csc", "requester": "mash",
                  "purpose": "child_safeguarding", "stage": "triage", "today": "2026-06-01",
                  "expect": {"answer": "known"}})
    (src / "tests" / "partners.yaml").write_text(yaml.safe_dump(cases))
    after = gaps(src)
    assert EXCLUSIONS not in after.fields
    assert "csc-mash-safeguarding: csc -> mash for child_safeguarding" not in after.grants
    assert "csc-mash-safeguarding: csc -> mash for child_safeguarding at research" in \
        after.stages
    assert after.exercised == before.exercised + 1
    code, out, _ = mash("policy", "test", "--src", str(src), "--coverage", "--today",
                        "2026-06-01")
    assert code == 0, out
    assert "untested stage: csc-mash-safeguarding: csc -> mash for child_safeguarding at " \
           "research" in out
    assert EXCLUSIONS not in out
