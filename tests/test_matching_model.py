"""The per-index match model: addresses, households, evidence, calibration (issue 16)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mash.agent.sources.mapping import ColumnMapping, map_row
from mash.matching import Matcher, persist
from mash.matching.address import parse
from mash.matching.calibration import (
    calibrate,
    content_digest,
    describe,
    household_shift,
    possible_threshold,
    shifted,
)
from mash.matching.compare import Place
from mash.matching.corruption import Pools, stranger_from
from mash.matching.index import build
from mash.matching.model import MatchModel
from mash.matching.score import score
from mash.normalise import name_tokens
from mash.synth.corrupt import scenario
from tests.matching_helpers import evaluate, record, subject


@pytest.mark.parametrize(("text", "flat", "number", "street"), [
    ("Flat 2, 14 Acacia Rd, Headingley, Leeds LS6 3AB", "2", "14", "acacia road"),
    ("2/14 Acacia Road", "2", "14", "acacia road"),
    ("2, 14 Acacia Road", "2", "14", "acacia road"),
    ("Apt 4B, 12-14 High St.", "4b", "12-14", "high street"),
    ("177 pridhamstreet, milton", "", "177", "pridham street"),  # a street type typed on
    ("3 St Johns St", "", "3", "saint johns street"),  # St: Saint before a name, Street at end
])
def test_uk_addresses_are_read_into_their_parts(text, flat, number, street) -> None:
    a = parse(text)
    assert (a.flat, a.number, a.street) == (flat, number, street)


def test_an_address_gives_its_postcode_house_name_and_swapped_lines() -> None:
    assert parse("Flat 2, 14 Acacia Rd, Leeds LS6 3AB").postcode == "LS6 3AB"
    assert parse("Rose Cottage, Mill Lane, Otley").premises == "rose cottage"
    swapped = parse("27 Jarrah, Mackinnon Street, Aspley")  # lines in the wrong order
    assert "mackinnon street" in swapped.streets
    assert parse("Leeds").street == "" and parse("Leeds").locality == ("leeds",)  # a town


def test_addresses_compare_as_one_place_with_the_postcode() -> None:
    records = [*scenario(400, 1, "clean", seed=11).records,
               record("Zara", "Quill", "2001-01-01", "LS6 3AB", record_id="here",
                      address="Flat 2, 14 Acacia Road, Leeds")]
    m = Matcher(records)
    row = np.array([len(records) - 1])

    def place(query) -> int:
        return int(score(m.index, query, row, m.model).place[0])

    same = subject("Zara", "Quill", None, "LS6 3AB", address="flat 2 14 acacia rd")
    assert place(same) == Place.PREMISES_POSTCODE
    assert place(subject("Zara", "Quill", None, address="14 Acacia Road")) == Place.PREMISES
    # another flat of the same building is not the same dwelling
    assert place(subject("Zara", "Quill", None, "LS6 3AB", address="Flat 5, 14 Acacia Road")
                 ) == Place.POSTCODE
    assert place(subject("Zara", "Quill", None, "LS6 3AB", address="16 Acacia Road")
                 ) == Place.POSTCODE
    assert place(subject("Zara", "Quill", None, address="16 Acacia Road")) == Place.STREET
    assert place(subject("Zara", "Quill", None, "BD5 7HJ", address="14 Acacia Road")
                 ) == Place.STREET  # a street of that name in another town
    assert place(subject("Zara", "Quill", None, "BD5 7HJ")) == Place.DIFFERENT


@pytest.mark.parametrize(("raw", "family", "tokens"), [
    ("Lord", True, ["lord"]),  # a family name that is also a title
    ("Mr Lord", True, ["lord"]),
    ("Knight", True, ["knight"]),
    ("Sir John", False, ["john"]),
    ("Jnr", True, ["jnr"]),
])
def test_titles_are_dropped_only_in_front_of_a_name(raw, family, tokens) -> None:
    assert name_tokens(raw, family=family) == tokens


def test_a_family_name_that_is_a_title_is_loaded_and_found(tmp_path: Path) -> None:
    mapping = ColumnMapping.of({
        "record_id": "id", "given_name": "first", "family_name": "last",
        "date_of_birth": "dob", "address": ["line1", "line2", "town"]}, {})
    rec = map_row({"id": "1", "first": "Emma", "last": "Lord", "dob": "2015-03-02",
                   "line1": "Flat 3", "line2": "9 Mill Lane", "town": "Leeds LS9 8AB"},
                  mapping, "s", Counter())
    assert rec.names[0].family == "lord"
    assert rec.addresses == ("Flat 3, 9 Mill Lane, Leeds LS9 8AB",)
    assert rec.postcodes == ("LS9 8AB",)  # a postcode written into the address counts


@pytest.fixture(scope="module")
def homes() -> tuple[Matcher, object]:
    """An area's households, half of whose people are held (twins and siblings included)."""
    sc = scenario(4000, 300, "low", seed=21, n_strangers=600, n_household=600)
    return Matcher(sc.records), sc


def test_the_calibration_says_what_it_estimated_and_from_how_much(homes) -> None:
    m, _ = homes
    p = m.model.provenance
    assert p["source"] == "estimated from this index's records" and p["records"] == 4000
    assert p["household"]["households_in_records"]  # the generator's families show
    assert p["u_pairs"]["given"] > 10_000 and p["m_simulated_pairs"]["given"] > 1000
    lines = describe(m.model)
    assert any("estimated false known" in line for line in lines)
    assert any(f"possible {m.model.thresholds.possible}" in line for line in lines)
    assert m.model.thresholds.match >= m.model.thresholds.possible + 3


def test_household_members_are_not_the_person_asked_about(homes) -> None:
    """Twins, siblings and parents of held people: at most a few in 600 come back known,
    while the held people themselves are found (the positive control)."""
    m, sc = homes
    figures = evaluate(m, sc)
    assert figures["household_known_rate"] <= 0.005
    assert figures["recall"] >= 0.93


def test_a_twin_is_not_a_match_but_the_person_is() -> None:
    background = scenario(3000, 1, "clean", seed=5).records
    twins = [record("Kyle", "Fairclough", "2012-11-03", "LS6 1AA", sex="M", record_id="kyle",
                    address="12 Orchard Way, Leeds"),
             record("Nadia", "Fairclough", "1990-08-14", "LS6 1AA", sex="F", record_id="nadia",
                    address="12 Orchard Way, Leeds")]
    m = Matcher([*background, *twins])
    twin = subject("Kian", "Fairclough", "2012-11-03", "LS6 1AA", sex="M",
                   address="12 Orchard Way")
    person = subject("Kyle", "Fairclough", "2012-11-03", "LS6 1AA", sex="M",
                     address="12 Orchard Way")
    assert "kyle" not in [c.record.record_id for c in m.search(twin).candidates
                          if c.band == "match"]
    assert [c.record.record_id for c in m.search(person).candidates][:1] == ["kyle"]


def test_a_shared_address_is_weak_evidence_where_many_people_live() -> None:
    """A hostel's address is held for many people: agreeing on it says less."""
    background = scenario(2000, 1, "clean", seed=4).records
    hostel = [record(f"Resident{i}", f"Person{i}", None, "LS2 7EW", record_id=f"h{i}",
                     address="1 Station Road, Leeds") for i in range(40)]
    home = record("Ann", "Other", None, "LS9 8AB", record_id="home",
                  address="7 Quarry Close, Leeds")
    records = [*background, *hostel, home]
    m = Matcher(records)
    at_hostel = score(m.index, subject("Ann", "Other", None, "LS2 7EW",
                                       address="1 Station Road"),
                      np.array([len(background)]), m.model)
    at_home = score(m.index, subject("Ann", "Other", None, "LS9 8AB",
                                     address="7 Quarry Close"),
                    np.array([len(records) - 1]), m.model)
    assert at_hostel.place[0] == at_home.place[0] == Place.PREMISES_POSTCODE
    # the same level, but the names are different people's: compare the place's share alone
    assert at_home.total[0] - at_hostel.total[0] > 3


def test_minimum_evidence_is_decided_by_evidence(homes) -> None:
    m, _ = homes
    searched = m.reach(subject("", "Fairclough", "2012-11-03", "LS6 1AA"))
    assert searched.searchable  # family name, date of birth and postcode: enough
    refused = m.reach(subject("", "Smith", None, "LS6 1AA"))
    assert not refused.searchable
    assert "date of birth" in refused.explain()  # says what would make it searchable
    assert m.reach(subject("Ann", "Smith", "2001-02-03")).searchable


@pytest.fixture(scope="module")
def small() -> Matcher:
    """A small agency: 250 records, where a rare value weighs a lot but proves little."""
    return Matcher(scenario(250, 1, "clean", seed=5).records)


def test_a_subject_whose_details_would_agree_by_chance_is_not_searched(small) -> None:
    thin = small.reach(subject("Zebedee", "Quixotic", None))  # names no record holds
    # enough bits (a name no other record holds weighs a lot) but not rare enough together:
    # in a small index an unseen name could be as common as any
    assert thin.best >= thin.needed
    assert thin.chance > thin.chance_limit == small.model.provenance["target_false_known"]
    assert not thin.searchable
    assert "by chance" in thin.explain() and "a date of birth" in thin.explain()
    # positive control: the detail it suggests makes the same subject searchable
    richer = small.reach(subject("Zebedee", "Quixotic", "2001-02-03"))
    assert richer.searchable and richer.chance <= richer.chance_limit
    # a date of birth alone is refused too (by the bits it could add)
    alone = small.reach(subject("", "", "2001-02-03"))
    assert not alone.searchable and "bits of evidence" in alone.explain()
    assert small.reach(subject("", "Quixotic", "2001-02-03", "LS6 1AA")).searchable


def test_a_common_name_makes_a_thin_subject_less_searchable(homes) -> None:
    m, _ = homes
    family = Counter(r.names[0].family for r in m.records).most_common(1)[0][0]
    common = m.reach(subject("", family, "2001-02-03"))
    rare = m.reach(subject("", "Quixotic", "2001-02-03"))
    assert common.chance > rare.chance  # the subject's own name's frequency counts
    assert rare.searchable  # positive control
    assert not common.searchable and "by chance" in common.explain()
    assert m.reach(subject("Ann", family, "2001-02-03")).searchable


def test_the_blind_round_never_refuses_what_round_two_would_search(small, homes) -> None:
    """Round one knows only the kinds of evidence: its bound must be the looser one."""
    import itertools

    from mash.matching.evidence import kinds_of

    outcomes = Counter()
    for matcher in (small, homes[0]):
        for r in matcher.records[:40]:
            n = r.names[0]
            parts = {"given": n.given.split()[0], "family": n.family,
                     "dob": r.date_of_birth.isoformat() if r.date_of_birth else None,
                     "postcode": r.postcodes[0] if r.postcodes else None}
            for keep in itertools.product((True, False), repeat=4):
                got = {k: v if on else None for (k, v), on in zip(parts.items(), keep,
                                                                   strict=True)}
                s = subject(got["given"] or "", got["family"] or "", got["dob"],
                            *([got["postcode"]] if got["postcode"] else []))
                second = matcher.reach(s)
                first = matcher.reach_of_kinds(kinds_of(s, matcher.index))
                outcomes[(first.searchable, second.searchable)] += 1
                assert first.searchable or not second.searchable, sorted(kinds_of(s))
    # both rules are exercised: subjects searched, refused in both rounds, and refused only
    # once their values are known (a common family name and a date of birth)
    assert outcomes[(True, True)] and outcomes[(False, False)] and outcomes[(True, False)]


def test_strangers_are_drawn_from_different_records() -> None:
    import random

    records = scenario(300, 1, "clean", seed=8).records
    pools = Pools.of(records, random.Random(1))
    rng = random.Random(2)
    by_name = {(r.names[0].given.split()[0], r.names[0].family): r for r in records}
    same = sum((v.given, v.family) in by_name and by_name[(v.given, v.family)].date_of_birth
               == v.dob for v, _ in (stranger_from(pools, rng) for _ in range(2000)))
    assert same <= 2  # one record's name and date together only as often as values repeat


def test_a_stranger_is_searched_without_the_records_it_was_drawn_from() -> None:
    """Leave one out: a stranger meets its donors' values only where other records share
    them. Positive control: searched against every record, it finds its donors."""
    import random

    from mash.matching.calibration import best_score

    records = scenario(300, 1, "clean", seed=8).records
    index = build(records)
    model = MatchModel.prior()
    pools = Pools.of(records, random.Random(1))
    rng = random.Random(3)
    drawn = [stranger_from(pools, rng) for _ in range(200)]
    for view, donors in drawn:
        assert any(records[row].names and records[row].names[0].family == view.family
                   for row in donors)
    with_donors = [best_score(index, model, v.subject()) for v, _ in drawn]
    without = [best_score(index, model, v.subject(), leave_out=d) for v, d in drawn]
    assert all(b <= a for a, b in zip(with_donors, without, strict=True))
    assert all(np.isfinite(with_donors))  # every stranger meets its donors
    floor = -50.0  # no candidate left at all counts as this
    assert np.mean(np.maximum(without, floor)) < np.mean(with_donors) - 1.0


def test_the_calibration_is_saved_with_the_index_and_reused(tmp_path: Path) -> None:
    records = scenario(800, 1, "low", seed=13).records
    index = build(records)
    m = Matcher(records, index=index)
    path = tmp_path / "x.index"
    persist.save(index, path, "fp", m.model)
    loaded = persist.load(path, "fp", len(records))
    assert loaded is not None and loaded[1] is not None
    again = loaded[1]
    assert again.thresholds == m.model.thresholds
    assert all(np.array_equal(again.u[f], m.model.u[f]) for f in m.model.u)
    assert json.loads(again.to_json()) == json.loads(m.model.to_json())
    assert persist.load(path, "another fingerprint", len(records)) is None  # control


def test_the_calibration_draws_do_not_change_with_the_blocking_keys() -> None:
    """The seed of a calibration's synthetic queries comes from the records' values, so a
    change to the blocking keys is measured under the same draws; what the calibration
    reads (the memo's key) still includes the keys."""
    records = scenario(300, 1, "low", seed=5).records
    index = build(records)
    rekeyed = dataclasses.replace(index, key_hashes=index.key_hashes[::-1].copy())
    assert content_digest(rekeyed, keys=False) == content_digest(index, keys=False)
    assert content_digest(rekeyed) != content_digest(index)
    seeds = {calibrate(i, records, strangers=50, household_members=50).provenance["seed"]
             for i in (index, rekeyed)}
    assert len(seeds) == 1
    other = build(scenario(300, 1, "low", seed=6).records)  # positive control: other records
    assert content_digest(other, keys=False) != content_digest(index, keys=False)


def test_the_target_false_known_rate_moves_the_thresholds() -> None:
    records = scenario(1500, 1, "low", seed=17).records
    strict = Matcher(records, target_false_known=0.0005).model.thresholds
    loose = Matcher(records, target_false_known=0.02).model.thresholds
    assert strict.possible > loose.possible


def test_a_model_with_the_wrong_levels_is_refused() -> None:
    doc = json.loads(MatchModel.prior().to_json())
    doc["m"]["given"] = doc["m"]["given"][:3]
    with pytest.raises(ValueError, match="levels"):
        MatchModel.from_json(json.dumps(doc))
    assert dataclasses.asdict(MatchModel.prior().thresholds)  # positive control: priors load


def test_a_candidate_who_shares_family_name_and_place_needs_more_evidence(homes) -> None:
    """The shift (set by calibration where households set the bar: a twin's record) is
    taken off only candidates who share the query's family name and place, or its family
    name where one side gives no place; the others keep their score."""
    m, _ = homes
    assert m.model.provenance["household"]["shift"] == m.model.household.shift
    shifted = dataclasses.replace(m.model, household=dataclasses.replace(
        m.model.household, shift=4.0))
    unshifted = dataclasses.replace(m.model, household=dataclasses.replace(
        m.model.household, shift=0.0))
    assert any("needs 4.0 bits more" in line for line in describe(shifted))
    assert not any("bits more" in line for line in describe(unshifted))
    row = next(i for i, r in enumerate(m.records) if r.postcodes and r.names
               and r.date_of_birth)
    held = m.records[row]
    n, dob = held.names[0], held.date_of_birth.isoformat()
    rows = np.array([row])

    def drop(query: object) -> float:
        return float(score(m.index, query, rows, unshifted).total[0]
                     - score(m.index, query, rows, shifted).total[0])

    assert drop(subject(n.given, n.family, dob, held.postcodes[0])) == pytest.approx(4.0)
    assert drop(subject(n.given, n.family, dob)) == pytest.approx(4.0)  # no place given
    # the positive control: the same person asked about at another address keeps its score
    assert drop(subject(n.given, n.family, dob, "ZE2 9QQ")) == pytest.approx(0.0)


def test_the_shift_is_the_one_that_finds_the_most_held_people() -> None:
    """Strangers reach 15 bits, household members (all household-like) 20: a shift of about
    5 bits lets the others' bar fall to the strangers' without letting more members in.
    Held people who do not share their record's place gain from it, and it is chosen; held
    people who all share it gain nothing (and lose beyond 5 bits), so none is."""
    rng = np.random.default_rng(3)
    minus = np.full(1000, -np.inf)
    strangers = np.column_stack([minus, rng.uniform(0, 15, 1000)])
    members = [(np.column_stack([rng.uniform(0, 20, 1000), minus]), 1.0)]
    apart = np.column_stack([minus, rng.uniform(15, 25, 1000)])
    housed = np.column_stack([rng.uniform(25, 35, 1000), minus])
    mixed = np.concatenate([apart, housed])
    shift = household_shift(strangers, members, mixed, 100, 0.01)
    assert shift == pytest.approx(5.0, abs=0.3)
    # every shift tried keeps the members within the target: the chosen one too
    bar = possible_threshold(shifted(strangers, shift), [(shifted(members[0][0], shift), 1.0)],
                             100, 0.01)
    assert float((members[0][0][:, 0] - shift >= bar).mean()) <= 0.01
    assert float((strangers[:, 1] >= bar).mean()) <= 0.01
    at_home = np.column_stack([rng.uniform(15, 25, 1000), minus])
    assert household_shift(strangers, members, at_home, 100, 0.01) == 0.0
    assert household_shift(strangers, members, np.zeros((0, 2)), 100, 0.01) == 0.0


def test_calibrating_only_the_candidates_that_can_reach_the_floor_changes_nothing(
        homes, monkeypatch) -> None:
    """Calibration scores its synthetic queries only against candidates that can reach the
    index's floor (no threshold is chosen below it): the thresholds, the household shift
    and the estimated rates are exactly those of scoring every candidate. Every search is
    pruned here (FEW_ROWS 0), and the positive control shows rows were dropped."""
    import mash.matching.calibration as calibration
    import mash.matching.score as score_mod

    m, _ = homes
    monkeypatch.setattr(score_mod, "FEW_ROWS", 0)
    seen = {"examined": 0, "scored": 0}

    def counted(*args: object, **kwargs: object) -> object:
        out = score_mod.score(*args, **kwargs)  # type: ignore[arg-type]
        seen["examined"] += out.examined
        seen["scored"] += len(out.rows)
        return out

    monkeypatch.setattr(calibration, "score", counted)
    models, dropped = {}, {}
    for prune in (True, False):
        seen.update(examined=0, scored=0)
        models[prune] = calibration.calibrate(m.index, m.records, seed=7, prune=prune)
        dropped[prune] = seen["examined"] - seen["scored"]
    assert dropped[False] == 0 and dropped[True] > seen["examined"] / 4
    pruned, full = models[True], models[False]
    assert pruned.thresholds == full.thresholds
    assert pruned.household.shift == full.household.shift > 0
    for key in ("estimated_false_known", "estimated_false_match", "possible_for"):
        assert pruned.provenance[key] == full.provenance[key]


def test_a_household_member_of_someone_born_on_29_february_is_made() -> None:
    """A sibling drawn younger than today is made older instead; for a person born on
    29 February that date must exist in the other year (it once raised, and the whole
    calibration, so the agent's load, with it)."""
    import datetime as dt
    import random

    from mash.matching.corruption import household_member

    leapling = record("Ava", "Hart", "2024-02-29", "LS6 1AA", sex="F", record_id="ava")
    records = [leapling, *scenario(200, 1, "clean", seed=8).records]
    pools = Pools.of(records, random.Random(1))
    today = dt.date(2026, 12, 3)
    dobs = [household_member(leapling, pools, random.Random(seed), today,
                             kind="sibling").dob for seed in range(400)]
    assert all(d is not None and d <= today and d != leapling.date_of_birth for d in dobs)
    assert any(d is not None and d.year < 2024 for d in dobs)  # the older ones were made


def test_a_record_counts_once_per_place_it_has_in_the_household_ratios() -> None:
    from mash.matching.estimate import _distinct_per_row
    from mash.matching.index import NONE

    rng = np.random.default_rng(5)
    for _ in range(200):
        n, k = int(rng.integers(0, 40)), int(rng.integers(1, 5))
        places = rng.integers(NONE, 6, size=(n, k)).astype(np.int32)
        # each row's set of places, NONE left out: a dwelling given twice counts once
        expected = sorted(v for row in places.tolist() for v in set(row) if v != NONE)
        assert sorted(_distinct_per_row(places).tolist()) == expected
