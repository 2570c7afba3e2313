"""`mash case run`: a household looked up through a real federation, and bad case files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mash.audit.config import AuditConfig
from mash.audit.report import Criteria, search
from tests.helpers import Running
from tests.test_cli import mash, one_error_line, run_mash

FAMILY = """\
reference: MASH-2026-0107
purpose: child_safeguarding
stage: research
urgency: red
reason: School referral about bruising; the household is checked together
{agencies}people:
  - relationship: child
    name: Leah Thompson
    dob: 2014-05-17
    postcodes: [LS9 8AB]
  - relationship: father
    name: Darren Thompson
    dob: 1986-07-21
    sex: M
    postcodes: LS9 8AB
"""


def case_file(tmp_path: Path, text: str = FAMILY.format(agencies=""),
              name: str = "family.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


async def test_case_run_prints_the_family_picture(running: Running, tmp_path: Path) -> None:
    code, out, err = await mash("case", "run", case_file(tmp_path), "--config",
                                str(running.fed.client_config))
    assert code == 3, err  # the agencies without an agent running are NOT CHECKED
    assert "Family picture: case MASH-2026-0107" in out
    assert "Leah Thompson" in out and "Darren Thompson" in out and "father" in out
    assert "● KNOWN" in out and "⚠ NOT CHECKED" in out and "agent offline" in out
    assert "Police" in out and "no agreement" in out  # probation: no agreement for this
    assert "NOT CHECKED: treat them as unknown" in err


async def test_case_run_json_is_one_lookup_per_person_under_the_case(
        running: Running, tmp_path: Path) -> None:
    code, out, _ = await mash("case", "run", case_file(tmp_path), "--json", "--config",
                              str(running.fed.client_config))
    assert code == 3
    picture = json.loads(out)
    assert picture["case"] == {"reference": "MASH-2026-0107", "purpose": "child_safeguarding",
                               "stage": "research", "urgency": "red"}
    child, father = picture["people"]
    assert (child["relationship"], father["relationship"]) == ("child", "father")
    assert child["cells"]["police"]["state"] == "KNOWN"
    assert father["cells"]["police"]["state"] == "KNOWN"
    assert child["cells"]["housing"] == {
        "state": "NOT_CHECKED", "text": "⚠ NOT CHECKED", "reason": "agent offline",
        "detail": child["cells"]["housing"]["detail"]}
    assert {a["id"] for a in picture["agencies"]} >= {"police", "health", "csc", "housing"}
    assert picture["not_checked"] == sum(
        1 for p in picture["people"] for c in p["cells"].values() if c["state"] == "NOT_CHECKED")
    # The broker's audit trail has each person's lookup under the case's context.
    audit = AuditConfig.load(running.fed.broker_config)
    with audit.open_store() as store:
        found = search(store, Criteria(case_reference="MASH-2026-0107"))
    lookups = {f.entry.lookup_id: f.entry for f in found
               if f.entry is not None and f.entry.event == "lookup"}
    assert set(lookups) == {child["lookup_id"], father["lookup_id"]}
    assert {(e.purpose, e.stage, e.urgency) for e in lookups.values()} == {
        ("child_safeguarding", "research", "red")}


async def test_a_case_whose_agencies_all_answer_exits_0(running: Running,
                                                        tmp_path: Path) -> None:
    text = FAMILY.format(agencies="agencies: [police, health]\n")
    code, out, _ = await mash("case", "run", case_file(tmp_path, text), "--json", "--config",
                              str(running.fed.client_config))
    assert code == 0
    picture = json.loads(out)
    assert [a["id"] for a in picture["agencies"]] == ["health", "police"]
    assert picture["not_checked"] == 0


async def test_a_person_the_broker_refuses_names_the_person(running: Running,
                                                            tmp_path: Path) -> None:
    text = FAMILY.format(agencies="").replace("child_safeguarding", "tea_and_biscuits")
    code, _, err = await mash("case", "run", case_file(tmp_path, text), "--config",
                              str(running.fed.client_config))
    assert code == 2
    line = one_error_line(err)
    assert "(child)" in line or "(father)" in line
    assert "invalid_argument: unknown purpose 'tea_and_biscuits'" in line


BAD_FILES = [
    ("reference: X\n  bad: [", "not valid YAML at line 2"),
    ("- just\n- a list\n", ": (top level): expected a case"),
    (FAMILY.format(agencies="").replace("urgency: red", "urgncy: red"),
     "line 4: urgncy: unknown key"),
    (FAMILY.format(agencies="").replace("urgency: red\n", ""), ": urgency: required key"),
    (FAMILY.format(agencies="").replace("urgency: red", "urgency: purple"),
     "line 4: urgency: 'purple' is not allowed"),
    (FAMILY.format(agencies="").replace("relationship: father", "relationship: uncle_bob"),
     "line 11: people[1].relationship: 'uncle_bob' is not allowed"),
    (FAMILY.format(agencies="").replace("relationship: father", "relationship: child"),
     "exactly one person must have relationship: child"),
    (FAMILY.format(agencies="").replace("1986-07-21", "1986-13-21"),
     "line 11: people[1]: date '1986-13-21' is not a calendar date"),
    (FAMILY.format(agencies="").replace("postcodes: LS9 8AB", "postcodes: XX"),
     "line 15: people[1].postcodes[0]: "),
    (FAMILY.format(agencies="").replace("sex: M", "sex: Q"), "line 14: people[1].sex:"),
    (FAMILY.format(agencies="").replace("School referral about bruising; the household is "
                                        "checked together", "short"),
     "line 5: reason: must say why"),
    (FAMILY.format(agencies="").replace("reference: MASH-2026-0107", "reference: 'a b'"),
     "line 1: reference: may hold"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_FILES)
def test_every_bad_case_file_is_one_line_naming_line_and_key(
        tmp_path: Path, text: str, expected: str) -> None:
    path = case_file(tmp_path, text)
    code, out, err = run_mash("case", "run", path, "--config", str(tmp_path / "none.yaml"))
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith(f"mash: error: {path}") for line in lines), err
    assert expected in lines[0], err  # a typo first: it also makes the key it meant missing
    assert out == "" and "Traceback" not in err
    assert "context." not in err and "subject." not in err  # the file's keys, not protobuf's


def test_every_problem_of_a_case_file_is_named_at_once(tmp_path: Path) -> None:
    """A bad date of birth, sex and postcode on different people, and a short reason: one
    line for each, naming its line and the case file's key (never the protobuf field)."""
    text = (FAMILY.format(agencies="")
            .replace("School referral about bruising; the household is checked together",
                     "short")
            .replace("dob: 2014-05-17", "dob: 2099-05-17")
            .replace("postcodes: LS9 8AB", "postcodes: XX"))
    path = case_file(tmp_path, text)
    code, out, err = run_mash("case", "run", path, "--config", str(tmp_path / "none.yaml"))
    assert code == 2 and out == "", err
    lines = [line.removeprefix(f"mash: error: {path}: ") for line in err.splitlines()
             if line.strip()]
    assert len(lines) == 3, err
    assert lines[0].startswith("line 9: people[0].dob: "), err
    assert lines[1].startswith("line 15: people[1].postcodes[0]: "), err
    assert lines[2].startswith("line 5: reason: must say why"), err
    assert "date_of_birth" not in err and "justification" not in err and "addresses" not in err


def test_a_missing_case_file(tmp_path: Path) -> None:
    code, _, err = run_mash("case", "run", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "file not found" in one_error_line(err)


def test_the_good_file_passes_the_same_checks(tmp_path: Path) -> None:
    """Positive control for the table above: the file they are edited from is accepted (it
    gets as far as the client config)."""
    code, _, err = run_mash("case", "run", case_file(tmp_path), "--config",
                            str(tmp_path / "none.yaml"))
    assert code == 2
    assert "none.yaml: file not found" in one_error_line(err)


def test_later_answers_and_new_agencies_update_a_kept_picture() -> None:
    from mash.cases.model import Case
    from mash.cases.picture import FamilyPicture, Row, merge_later, still_to_ask
    from mash.v1 import answer_pb2, lookup_pb2

    def answer(agency: str, state: int, reason: int = 0) -> answer_pb2.AgencyAnswer:
        return answer_pb2.AgencyAnswer(agency_id=agency, agency_name=agency.title(),
                                       state=state, not_checked_reason=reason)  # type: ignore[arg-type]

    case = Case.model_validate({
        "reference": "C-1", "purpose": "child_safeguarding", "stage": "research",
        "urgency": "red", "reason": "a referral about a child",
        "people": [{"relationship": "child", "name": "A B"},
                   {"relationship": "mother", "name": "C B"}]})
    offline = answer("housing", answer_pb2.ANSWER_STATE_NOT_CHECKED,
                     answer_pb2.NOT_CHECKED_REASON_AGENT_OFFLINE)
    refused = answer("probation", answer_pb2.ANSWER_STATE_NOT_CHECKED,
                     answer_pb2.NOT_CHECKED_REASON_NO_AGREEMENT)
    rows = tuple(Row(i, p, lookup_pb2.LookupResponse(lookup_id=f"L{i}",
                                                    answers=[offline, refused]))
                 for i, p in enumerate(case.people))
    picture = FamilyPicture(case, rows).to_dict()
    assert still_to_ask(picture["people"][0]) == ["housing"]  # no agreement: not again
    later = lookup_pb2.LookupResponse(lookup_id="L9", answers=[
        answer("housing", answer_pb2.ANSWER_STATE_KNOWN),
        answer("youth", answer_pb2.ANSWER_STATE_NOT_KNOWN)])  # registered since
    assert merge_later(picture, 0, later) == 2
    child, mother = picture["people"]
    assert child["cells"]["housing"]["state"] == "KNOWN"
    assert child["cells"]["youth"]["state"] == "NOT_KNOWN"
    assert mother["cells"]["youth"] == {"state": "NOT_CHECKED", "text": "⚠ NOT CHECKED",
                                        "reason": "not asked",
                                        "detail": "this person's lookup did not ask this agency"}
    assert [a["id"] for a in picture["agencies"]] == ["housing", "probation", "youth"]
    assert picture["not_checked"] == 4  # child: probation; mother: housing, probation, youth
    assert child["later_lookup_ids"] == ["L9"]
