"""The rules behind disclosure beyond the agreement, on their own (fast): which match levels
an agreement lets an answer state, when the score is sent, which candidates of one lookup
are released, and how federation.yaml marks stages that need approval. The same rules are
exercised through real brokers and agents in tests/test_disclosure.py."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from mash.agent.consistency import primary_subject, select
from mash.agent.describe import LEVELS, Describer
from mash.demo import federation
from mash.matching import Candidate
from mash.policy.agreements import load_federation
from mash.policy.errors import AgreementError
from mash.records import PersonRecord
from mash.subject import Name, SubjectQuery

MAPPED = frozenset({"given_name", "family_name", "aliases", "date_of_birth", "sex",
                    "postcode", "pnc_id", "markers"})


def test_a_level_is_stated_only_when_its_fields_are_released_far_enough() -> None:
    levels = ("pnc_id", "given_name", "family_name", "date_of_birth", "postcode", "sex")
    nothing = Describer({}, MAPPED)
    assert nothing.matched_on(levels) == []
    names = Describer({"given_name": "keep", "family_name": "keep", "aliases": "keep"}, MAPPED)
    assert names.matched_on(levels) == ["given_name", "family_name"]
    # aliases mapped but not released: a name level could be an alias's, so it is not said
    no_aliases = Describer({"given_name": "keep", "family_name": "keep"}, MAPPED)
    assert no_aliases.matched_on(levels) == []
    # ... unless the agent maps no aliases at all
    assert Describer({"given_name": "keep"}, MAPPED - {"aliases"}).matched_on(
        ["given_name"]) == ["given_name"]
    year = Describer({"date_of_birth": "year"}, MAPPED)
    assert year.matched_on(["date_of_birth", "date_of_birth:year"]) == []
    assert Describer({"date_of_birth": "keep"}, MAPPED).matched_on(
        ["date_of_birth:one_part_differs"]) == ["date_of_birth:one_part_differs"]
    masked = Describer({"pnc_id": "mask"}, MAPPED)
    assert masked.matched_on(["pnc_id"]) == []
    assert Describer({"pnc_id": "keep"}, MAPPED).matched_on(["pnc_id"]) == ["pnc_id"]
    assert Describer({"markers": "keep"}, MAPPED).matched_on(["made_up_level"]) == []


def test_a_postcode_level_is_said_as_coarse_as_the_release() -> None:
    district = Describer({"postcode": "district"}, MAPPED)
    sector = Describer({"postcode": "sector"}, MAPPED)
    keep = Describer({"postcode": "keep"}, MAPPED)
    for level in ("postcode", "postcode_sector", "postcode_district"):
        assert district.matched_on([level]) == ["postcode_district"]
    assert sector.matched_on(["postcode"]) == ["postcode_sector"]
    assert sector.matched_on(["postcode_district"]) == ["postcode_district"]
    assert keep.matched_on(["postcode_sector"]) == ["postcode_sector"]
    assert Describer({"postcode": "hmac"}, MAPPED).matched_on(["postcode"]) == []
    # a previous postcode the agreement does not release is one the level may be about
    both = MAPPED | {"previous_postcodes"}
    assert Describer({"postcode": "keep"}, both).matched_on(["postcode"]) == []
    assert set(LEVELS["address"].fields) >= {"address", "postcode"}


def test_the_score_is_sent_only_when_every_field_it_read_is_released_unmodified() -> None:
    subject = SubjectQuery(names=(Name("leah", "", "thompson"),),
                           date_of_birth=dt.date(2014, 5, 17), postcodes=("LS9 8AB",))
    every = {f: "keep" for f in MAPPED}
    assert Describer(every, MAPPED).score(subject, 25.5) == 25.5
    assert Describer({**every, "postcode": "district"}, MAPPED).score(subject, 25.5) == 0.0
    assert Describer({**every, "sex": "drop"}, MAPPED).score(subject, 25.5) == 25.5  # not asked
    with_sex = SubjectQuery(names=subject.names, sex="F")
    assert Describer({**every, "sex": "drop"}, MAPPED).score(with_sex, 25.5) == 0.0
    local = SubjectQuery(names=subject.names, local_ids=(("police", "X1"),))
    assert Describer(every, MAPPED).score(local, 25.5) == 0.0  # a kind not described


def _record(rid: str, dob: dt.date | None, sex: str = "", **ids: str) -> PersonRecord:
    return PersonRecord(rid, "src", (Name("a", "", "b"),), dob, sex, (), dict(ids))


def _candidate(record: PersonRecord) -> Candidate:
    return Candidate(record, 20.0, "match", ())


def _ids(records: list[Candidate]) -> list[str]:
    return [c.record.record_id for c in records]


D1, D2 = dt.date(2014, 5, 17), dt.date(1986, 7, 21)


def test_consistent_candidates_all_go_on_and_a_lone_typo_is_kept() -> None:
    subject = SubjectQuery(names=(Name("a", "", "b"),), date_of_birth=D1)
    same = [_candidate(_record("1", D1)), _candidate(_record("2", None, "F"))]
    assert _ids(select(same, subject, lambda: set()).released) == ["1", "2"]
    typo = [_candidate(_record("3", dt.date(2014, 5, 18)))]  # found by the primary name
    kept = select(typo, subject, lambda: {("src", "3")})
    assert _ids(kept.released) == ["3"] and not kept.left_out


def test_candidates_contradicting_the_subject_are_left_out_with_counts() -> None:
    subject = SubjectQuery(names=(Name("a", "", "b"), Name("c", "", "d")), date_of_birth=D1,
                           sex="F", identifiers={"pnc_id": "11/1A"})
    candidates = [_candidate(_record("1", D1, "F")), _candidate(_record("2", D2)),
                  _candidate(_record("3", None, "M")),
                  _candidate(_record("4", None, pnc_id="99/9Z"))]
    chosen = select(candidates, subject, lambda: {("src", "1"), ("src", "2")})
    assert _ids(chosen.released) == ["1"]
    assert sorted(_ids(chosen.left_out)) == ["2", "3", "4"]
    text = chosen.summary()
    assert text.startswith("3 record(s)") and "pnc id" in text and "sex" in text
    # an alias-only record that contradicts the subject is left out even when alone
    alone = select([_candidate(_record("5", D2))], subject, lambda: set())
    assert not alone.released and _ids(alone.left_out) == ["5"]


def test_without_the_field_that_tells_them_apart_the_primary_name_decides() -> None:
    subject = SubjectQuery(names=(Name("a", "", "b"), Name("c", "", "d")))
    candidates = [_candidate(_record("1", D1)), _candidate(_record("2", D2))]
    chosen = select(candidates, subject, lambda: {("src", "1")})
    assert _ids(chosen.released) == ["1"] and _ids(chosen.left_out) == ["2"]
    # namesakes both found by the primary name: released, with a warning to confirm
    both = select(candidates, subject, lambda: {("src", "1"), ("src", "2")})
    assert _ids(both.released) == ["1", "2"]
    assert both.warnings and "cannot all be the same person" in both.warnings[0]
    # found by aliases only: none is released (the handler answers WITHHELD)
    none = select(candidates, subject, lambda: set())
    assert not none.released and len(none.left_out) == 2
    assert primary_subject(subject).names == subject.names[:1]


def test_federation_yaml_marks_stages_that_need_approval(tmp_path: Path) -> None:
    fed = load_federation(federation.POLICIES / "federation.yaml")
    assert set(fed.approval_required) == {"strategy", "s47", "s42"}
    assert fed.data()["approvers"] == {"roles": ["supervisor"]}
    src = tmp_path / "federation.yaml"
    text = (federation.POLICIES / "federation.yaml").read_text()
    for bad, message in (("approval_required: [strategy, s74]", "'s74' is not a stage"),
                         ("  roles: [superviser]", "'superviser' is not one of the roles")):
        old = ("approval_required: [strategy, s47, s42]" if bad.startswith("approval")
               else "  roles: [supervisor]")
        src.write_text(text.replace(old, bad))
        with pytest.raises(AgreementError, match=message):
            load_federation(src)
    shutil.copy(federation.POLICIES / "federation.yaml", src)
    src.write_text("\n".join(line for line in text.splitlines()
                             if not line.startswith(("approval", "approvers", "  roles"))))
    assert load_federation(src).data().keys() == {"agencies", "purposes", "roles"}
