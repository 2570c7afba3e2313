"""Loading agreements: every mistake an IG lead can make is named at load, with the file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mash.policy import agreements, bundle
from mash.policy.errors import AgreementError
from tests.policy_helpers import copy_policies, edit_mou, police_stages

POLICE = "police-mash-safeguarding"


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return copy_policies(tmp_path / "policies")


def test_the_shipped_agreements_load(src: Path) -> None:
    fed, loaded = agreements.load_all(src)
    assert {a.id for a in loaded} >= {POLICE, "health-mash-safeguarding",
                                       "education-mash-safeguarding"}
    assert "child_safeguarding" in fed.purposes
    for a in loaded:
        assert agreements.lawful_basis_problems(a) == []
        assert a.warnings == []


def set_in(path: list, value):
    def change(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


GRANT = ["grants", 0]
STAGES = [*GRANT, "purposes", "child_safeguarding", "stages"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (set_in([*STAGES, "research", "release", "markers"], "shred"),
         "unknown transform 'shred'"),
        (set_in([*STAGES, "research", "release", "markers"], {"transform": "mask", "middle": 1}),
         "does not take middle"),
        (set_in([*STAGES, "research", "release", "Bad Field"], "keep"),
         "lower_case_with_underscores"),
        (set_in([*STAGES, "reserach"], {"release": {}}), "unknown stage for child_safeguarding"),
        (set_in([*STAGES, "research", "answer"], "maybe"), "is not one of known, existence"),
        (set_in([*GRANT, "purposes", "fishing"], {"stages": {"triage": {}}}),
         "unknown purpose"),
        (set_in(["parties"], ["police", "mi5"]), "not in policies/federation.yaml: mi5"),
        (set_in([*GRANT, "requester"], "csc"), "'csc' is not a party"),
        (set_in([*GRANT, "roles"], ["admin"]), "name roles from"),
        (set_in(["expires"], "2025-01-01"), "must be after valid_from"),
        (set_in(["review_by"], "2031-06-01"), "must fall between valid_from and expires"),
        (set_in(["valid_from"], "1st of January"), "is not a date"),
        (set_in(["colour"], "blue"), "unknown setting 'colour'"),
        (set_in([*GRANT, "purposes", "child_safeguarding", "lawful_basis", "article_99"], "x"),
         "unknown key(s) article_99"),
        (set_in(["grants"], []), "an agreement must grant something"),
        (set_in([*GRANT, "withhold_when", 0, "reason"], None), "required setting is missing"),
    ],
)
def test_mistakes_are_rejected_at_load(src: Path, change, message) -> None:
    edit_mou(src, POLICE, change)
    with pytest.raises(AgreementError, match=message.replace("(", r"\(").replace(")", r"\)")) \
            as err:
        agreements.load_all(src)
    assert f"{POLICE}.yaml" in str(err.value)


def test_duplicate_ids_are_rejected(src: Path) -> None:
    (src / "mous" / "copy.yaml").write_text((src / "mous" / f"{POLICE}.yaml").read_text())
    with pytest.raises(AgreementError, match="is also used by"):
        agreements.load_all(src)


def test_missing_lawful_basis_loads_but_is_reported(src: Path) -> None:
    edit_mou(src, POLICE, set_in([*GRANT, "purposes", "child_safeguarding", "lawful_basis"],
                                 {"article_6": "6(1)(e)"}))
    _, loaded = agreements.load_all(src)
    police = next(a for a in loaded if a.id == POLICE)
    [problem] = agreements.lawful_basis_problems(police)
    assert "no complete lawful basis" in problem and "child_safeguarding" in problem


def test_date_warnings(src: Path) -> None:
    _, loaded = agreements.load_all(src)
    police = next(a for a in loaded if a.id == POLICE)
    assert agreements.date_warnings(police, dt.date(2026, 6, 1)) == []
    assert "review overdue" in agreements.date_warnings(police, dt.date(2028, 6, 1))[0]
    assert "expired" in agreements.date_warnings(police, dt.date(2031, 6, 1))[0]
    assert "not in force" in agreements.date_warnings(police, dt.date(2025, 6, 1))[0]


def test_bundle_revision_is_stable_and_content_addressed(src: Path) -> None:
    first, second = bundle.build(src), bundle.build(src)
    assert first.revision == second.revision
    edit_mou(src, POLICE, lambda d: police_stages(d)["research"]["release"].pop("markers"))
    assert bundle.build(src).revision != first.revision


def test_a_tampered_bundle_does_not_parse(src: Path) -> None:
    raw = bundle.build(src).to_json()
    tampered = raw.replace(b'"markers"', b'"officer_in_case"', 1)
    with pytest.raises(AgreementError, match="does not match its revision"):
        bundle.parse(tampered)
    with pytest.raises(AgreementError, match="not a policy bundle"):
        bundle.parse(b"{oops")
