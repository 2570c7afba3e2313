"""Scoring: the right person is found through real-world errors; the wrong one is not."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from mash.matching import Matcher
from mash.matching.calibration import wilson
from mash.matching.compare import Family, Given, Place, compare_family, compare_given
from mash.matching.score import FEW_ROWS, Scored, score
from mash.subject import SubjectQuery
from mash.synth.corrupt import scenario
from tests.matching_helpers import evaluate, record, subject

NHS = "9434765919"
PEOPLE = [
    record("Catherine", "Holdsworth", "2011-04-09", "LS9 8AB", sex="F", record_id="kate",
           nhs_number=NHS),
    record("William", "Ackroyd", "1984-03-07", "BD5 7HJ", sex="M", record_id="bill"),
    record("Siobhan", "O'Brien", "2015-10-02", "WF1 3LP", sex="F", record_id="siobhan"),
    record("Amelia", "Sutcliffe-Barraclough", "2009-06-21", "HX1 2RS", sex="F",
           record_id="amelia"),
    record("Jayden", "Kirkroyd", "2016-01-01", "LS12 4TY", sex="M", record_id="jayden"),
    # a household: a mother and her twin sons at one address
    record("Nadia", "Fairclough", "1990-08-14", "LS6 1AA", sex="F", record_id="nadia"),
    record("Kyle", "Fairclough", "2012-11-03", "LS6 1AA", sex="M", record_id="kyle"),
    record("Kian", "Fairclough", "2012-11-03", "LS6 1AA", sex="M", record_id="kian"),
]


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    background = scenario(3000, 1, "clean", seed=5).records
    return Matcher([*background, *PEOPLE])


def found(matcher: Matcher, query, band: str | None = None) -> list[str]:
    return [c.record.record_id for c in matcher.search(query).candidates
            if band is None or c.band == band]


@pytest.mark.parametrize(("query", "who", "why"), [
    (subject("Catherine", "Holdsworth", "2011-04-09", "LS9 8AB"), "kate", "given_name"),
    (subject("Kate", "Holdsworth", "2011-04-09", "LS9 8AB"), "kate", "given_name:nickname"),
    (subject("Katie", "Holdsworth", "2011-04-09"), "kate", "given_name:nickname"),
    (subject("Bill", "Ackroyd", "1984-03-07"), "bill", "given_name:nickname"),
    (subject("Ackroyd", "William", "1984-03-07", "BD5 7HJ"), "bill", "names_swapped"),
    (subject("William", "Akroyd", "1984-03-07", "BD5 7HJ"), "bill", "family_name:similar"),
    (subject("Wiliam", "Ackroyd", "1984-03-07", "BD5 7HJ"), "bill", "given_name:similar"),
    (subject("William", "Ackroyd", "1984-07-03", "BD5 7HJ"), "bill",
     "date_of_birth:day_month_swapped"),
    (subject("William", "Ackroyd", "1984-03-08", "BD5 7HJ"), "bill",
     "date_of_birth:one_part_differs"),
    (subject("Siobhan", "OBrien", "2015-10-02", "WF1 3LP"), "siobhan", "family_name"),
    (subject("Siobhan", "O Brien", "2015-10-02"), "siobhan", "family_name"),
    (subject("Amelia", "Barraclough", "2009-06-21", "HX1 2RS"), "amelia", "family_name:part"),
    (subject("Jayden", "Kirkroyd", "2016-05-19", "LS12 4TY"), "jayden", "date_of_birth:year"),
    (subject("Jaden", "Kirkroyd", "2016-05-19", "LS12 4TY"), "jayden", "date_of_birth:year"),
    (subject("Catherine", "Holdsworth", "2011-04-09", "LS9 8ZZ"), "kate", "postcode_sector"),
    (subject("Cathy", "Smith", None, nhs_number=NHS), "kate", "nhs_number"),
])
def test_the_right_person_is_found(matcher: Matcher, query, who: str, why: str) -> None:
    outcome = matcher.search(query)
    assert outcome.candidates, "not found"
    best = outcome.candidates[0]
    assert best.record.record_id == who
    assert why in best.matched_on
    assert outcome.candidates_examined < len(matcher) / 20  # blocking touched a small share


@pytest.mark.parametrize("query", [
    subject("Catherine", "Holdsworth", "1979-12-25", "BD1 1AA"),  # a namesake, elsewhere
    subject("William", "Ackroyd", "1962-09-30", "WF2 2ZZ"),  # a namesake, another generation
])
def test_a_different_person_is_not_a_match(matcher: Matcher, query) -> None:
    assert not found(matcher, query)


def test_another_family_name_with_the_same_given_name_and_birthday_is_at_most_possible(
        matcher: Matcher) -> None:
    """Catherine Holroyd born on Catherine Holdsworth's birthday, elsewhere: another person,
    or the same child under a step-parent's or a new family name. Never a match; at most a
    possible candidate for the analyst to confirm, with what agreed."""
    query = subject("Catherine", "Holroyd", "2011-04-09", "WF10 1AA")
    assert not found(matcher, query, band="match")
    for candidate in matcher.search(query).candidates:
        assert candidate.band == "possible"
        assert "family_name" not in candidate.matched_on


def test_same_surname_and_birthday_is_at_most_possible(matcher: Matcher) -> None:
    # a sibling born the same day, or someone known by another first name: for the analyst
    assert not found(matcher, subject("Kieran", "Holdsworth", "2011-04-09", "HX3 9ZZ"),
                     "match")


def test_a_different_nhs_number_outweighs_name_and_date(matcher: Matcher) -> None:
    other = "9990000026" if NHS != "9990000026" else "9990000034"
    query = subject("Catherine", "Holdsworth", "2011-04-09", nhs_number=other)
    assert "kate" not in found(matcher, query, "match")


def test_a_twin_is_never_a_match_for_the_other(matcher: Matcher) -> None:
    assert found(matcher, subject("Kyle", "Fairclough", "2012-11-03", "LS6 1AA"),
                 "match") == ["kyle"]
    kian = found(matcher, subject("Kian", "Fairclough", "2012-11-03", "LS6 1AA"))
    assert kian[0] == "kian" and "kyle" not in found(
        matcher, subject("Kian", "Fairclough", "2012-11-03", "LS6 1AA"), "match")
    assert "nadia" not in found(matcher, subject("Kyle", "Fairclough", "2012-11-03"))


def test_term_frequency_a_common_surname_counts_for_less(matcher: Matcher) -> None:
    common = max(range(len(matcher.index.strings.strings)),
                 key=lambda i: matcher.index.family_count[i] if i < len(
                     matcher.index.family_count) else 0)
    common_name = matcher.index.strings.strings[common]
    assert matcher.index.family_count[common] > 50
    rare = record("Tobias", "Zzyzx", "2000-02-02", "LS1 1AA", record_id="rare")
    usual = record("Tobias", common_name, "2000-02-02", "LS1 1AA", record_id="usual")
    m = Matcher([*matcher.records, rare, usual])
    rows = np.array([len(m.records) - 2, len(m.records) - 1])
    rare_s = score(m.index, subject("Tobias", "Zzyzx", "2000-02-02", "LS1 1AA"), rows[:1],
                   m.model)
    usual_s = score(m.index, subject("Tobias", common_name, "2000-02-02", "LS1 1AA"), rows[1:],
                    m.model)
    assert rare_s.household is not None and usual_s.household is not None

    def evidence(s: Scored) -> float:  # before the household correction takes weight off
        assert s.household is not None
        return float(s.total[0] + s.household[0])

    assert evidence(rare_s) - evidence(usual_s) > 4.0  # bits of evidence lost to a common name
    # where every detail agrees the household correction caps both near what a namesake
    # living there would score, but never puts the common name above the rare one
    assert rare_s.total[0] >= usual_s.total[0]
    total = m.index.name_rows
    assert m.model.exact_name("family", 1, total) > m.model.exact_name("family", 500, total)


def test_a_locality_word_few_records_hold_counts_for_more_than_a_common_one(
        matcher: Matcher) -> None:
    # two records alike but for the town: one in a village no other record names, one in
    # Leeds, which 1,310 of the background's records name; the subject lives on another
    # street and gives another postcode, so each record shares only a word of its locality
    village = record("Tobias", "Quennell", "2000-02-02", "LS1 1AA", record_id="village",
                     address="4 Mill Lane, Zennor")
    town = record("Tobias", "Quennell", "2000-02-02", "LS1 1AA", record_id="town",
                  address="4 Mill Lane, Leeds")
    m = Matcher([*matcher.records, village, town])
    assert m.index.locality_count[m.index.strings.get("leeds")] > 1000
    assert m.index.locality_count[m.index.strings.get("zennor")] == 1
    rows = np.array([len(m.records) - 2, len(m.records) - 1])

    def query(address: str = "17 Church Street, Zennor, Leeds") -> SubjectQuery:
        return subject("Tobias", "Quennell", "2000-02-02", "TR26 3AA", address=address)

    def evidence(q: SubjectQuery) -> np.ndarray:  # before the household correction
        s = score(m.index, q, rows, m.model)
        assert s.household is not None
        return s.total + s.household

    assert list(score(m.index, query(), rows, m.model).place) == [Place.AREA, Place.AREA]
    village_w, town_w = evidence(query())
    assert village_w - town_w > math.log2(1000) - 1  # Leeds is held by 1,000 times as many
    # the village is more evidence than the level's average, which is all it was before
    m_area, u_area = m.model.m["place"][Place.AREA], m.model.u["place"][Place.AREA]
    m_none, u_none = m.model.m["place"][Place.DIFFERENT], m.model.u["place"][Place.DIFFERENT]
    no_address = evidence(query(""))  # its place: another postcode, no address to compare
    assert village_w - no_address[0] > math.log2(m_area / u_area) - math.log2(m_none / u_none)
    # positive control: a place with no word in common is no area agreement at all
    apart = score(m.index, query("17 Church Street, Mousehole"), rows, m.model)
    assert list(apart.place) == [Place.DIFFERENT, Place.DIFFERENT]
    # the pruning bound allows for the rare word: with the village's own total as the
    # floor, among every row of the index, the village's row is still scored (with the
    # same street made weak evidence, so that no other level's bound covers for it)
    model = copy.deepcopy(m.model)
    model.m["place"][Place.STREET] = 1e-6
    model.changed()
    every = np.arange(len(m.records))
    assert len(every) > FEW_ROWS
    full = score(m.index, query(), every, model)
    floored = score(m.index, query(), every, model,
                    floor=float(full.total[list(full.rows).index(rows[0])]))
    assert rows[0] in floored.rows and floored.examined == len(every)
    assert len(floored.rows) < len(every)  # and the floor did prune others


def test_comparison_levels() -> None:
    assert compare_given("bill", "william") == Given.NICKNAME
    assert compare_given("kate", "catherine") == Given.NICKNAME
    assert compare_given("ava", "aca") == Given.FUZZY
    assert compare_given("j", "jayden") == Given.INITIAL
    assert compare_given("tyler", "noah") == Given.DIFFERENT
    assert compare_family("smith jones", "jones") == Family.PART
    assert compare_family("smithjones", "smith jones") == Family.EXACT
    assert compare_family("thompson", "thomson") == Family.FUZZY
    assert compare_family("smith", "patel") == Family.DIFFERENT


def test_a_nickname_with_one_slip_in_it_is_a_typo_and_a_known_name_is_not() -> None:
    """'Oylivia' for a Liv, 'Tdedy' for a Theodore: a nickname of the other name typed with
    one slip compares as a typo (FUZZY), on either side. A name the nickname table knows
    is never a slip of another ('barry' is one slip from 'harry', a Henry, but it is a
    name), nor is a slip of the first letter; and searching an index, a name the agency
    holds twice or more is a name ('mila' is one slip from Amelia's 'mia')."""
    from mash.matching.compare import given_levels
    from mash.matching.features import StringFeatures
    from mash.matching.index import Interner

    assert compare_given("olivia", "liv") == Given.NICKNAME  # the control: no slip
    assert compare_given("oylivia", "liv") == Given.FUZZY
    assert compare_given("liv", "oylivia") == Given.FUZZY
    assert compare_given("theodore", "tdedy") == Given.FUZZY
    assert compare_given("jonhny", "jack") == Given.FUZZY
    assert compare_given("barry", "henry") == Given.DIFFERENT
    assert compare_given("xlivia", "liv") == Given.DIFFERENT  # the first letter slipped
    assert compare_given("oylivia", "emily") == Given.DIFFERENT
    assert compare_given("mila", "amelia") == Given.FUZZY  # without the records' counts

    names = ["mila", "amelia", "liv", "oylivia", "theodore", "tdedy", "henry", "barry"]
    interner = Interner(names)
    features = StringFeatures(interner)
    ids = np.array([interner.get(n) for n in names], dtype=np.int64)
    counts = np.zeros(len(names), dtype=np.int32)
    counts[ids] = 1

    def level(query: str, record: str, held: np.ndarray | None) -> int:
        at = np.array([interner.get(record)], dtype=np.int64)
        return int(given_levels(features, query, at, counts=held)[0])

    for query, held_name in (("mila", "amelia"), ("amelia", "mila"), ("oylivia", "liv"),
                             ("liv", "oylivia"), ("theodore", "tdedy")):
        assert level(query, held_name, None) == level(query, held_name, counts) == (
            Given.FUZZY)
    twice = counts.copy()
    twice[interner.get("mila")] = 2  # the agency holds two Milas: Mila is a name
    assert level("mila", "amelia", twice) == level("amelia", "mila", twice) == (
        Given.DIFFERENT)
    assert level("oylivia", "liv", twice) == Given.FUZZY
    assert level("barry", "henry", counts) == Given.DIFFERENT


def test_calibrated_thresholds_on_unseen_data() -> None:
    """Recall and false-known with the index's own calibration, on records it never saw
    labelled (a small sample: bench/accuracy.py measures the targets). The misses here are
    mostly a given name replaced where everything else agrees, which scores as a same-sex
    twin does: the household members' false-known rate keeps it out."""
    sc = scenario(5000, 300, "low", seed=77, n_strangers=1000, n_household=1000)
    figures = evaluate(Matcher(sc.records), sc)
    assert figures["recall"] >= 0.94
    assert figures["false_known_rate"] <= 0.003
    assert figures["household_known_rate"] <= 0.003
    # the counts behind the rates, and intervals that contain them
    assert figures["found"] / figures["queries_in_records"] == figures["recall"]
    lo, hi = figures["recall_ci95"]
    assert lo <= figures["recall"] <= hi


def test_wilson_interval_narrows_with_more_strangers() -> None:
    """4 events in 4,000 and 20 in 20,000 are both 0.1%, but only the second says much."""
    few, many = wilson(4, 4_000), wilson(20, 20_000)
    assert few[0] < 0.001 < few[1] and many[0] < 0.001 < many[1]
    assert many[1] - many[0] < (few[1] - few[0]) / 2
    assert wilson(0, 20_000)[0] == 0.0 and 0 < wilson(0, 20_000)[1] < 0.0002


def test_a_year_is_mistyped_only_by_one_digit_or_a_transposition() -> None:
    import datetime as dt

    from mash.matching.compare import Dob, compare_dob
    from mash.matching.index import dob_int

    rows = np.array([dob_int(dt.date(y, 2, 1)) for y in (2016, 2051, 2001, 2015, 1915)],
                    dtype=np.int32)
    levels = compare_dob(dt.date(2015, 2, 1), rows).tolist()
    assert levels == [Dob.ONE_OFF, Dob.ONE_PART, Dob.DIFFERENT, Dob.EXACT, Dob.DIFFERENT]


def test_a_part_off_by_one_is_its_own_level() -> None:
    """The next day, the next month, a year off by one or ten: ONE_OFF; another slip of one
    digit: ONE_PART (two different people meet there far more often)."""
    import datetime as dt

    from mash.matching.compare import Dob, compare_dob
    from mash.matching.index import dob_int

    query = dt.date(1990, 5, 14)
    rows = np.array([dob_int(dt.date(*ymd)) for ymd in (
        (1990, 5, 15), (1990, 6, 14), (1991, 5, 14), (1980, 5, 14),  # off by one
        (1990, 5, 24), (1990, 9, 14), (1993, 5, 14))], dtype=np.int32)
    assert compare_dob(query, rows).tolist() == [Dob.ONE_OFF] * 4 + [Dob.ONE_PART] * 3


def test_every_date_of_birth_level_in_one_column() -> None:
    """Each distinct date is compared once and its level given to every row holding it."""
    import datetime as dt

    from mash.matching.compare import Dob, compare_dob

    query = dt.date(2012, 3, 8)
    column = {20120308: Dob.EXACT, 20120803: Dob.SWAPPED, 20120309: Dob.ONE_OFF,
              20120328: Dob.ONE_PART, 20210308: Dob.ONE_PART, 20120101: Dob.YEAR_ONLY,
              20070308: Dob.DIFFERENT, 20130308: Dob.ONE_OFF, 0: Dob.MISSING,
              19990911: Dob.DIFFERENT}
    values = list(column) * 3  # repeats share the memo and must keep their own level
    levels = compare_dob(query, np.array(values, dtype=np.int32)).tolist()
    assert levels == [column[v] for v in values]
    assert compare_dob(None, np.array(values, dtype=np.int32)).tolist() == [Dob.MISSING] * 30
    placeholder = dt.date(2012, 1, 1)  # 01/01: only the year can agree
    assert compare_dob(placeholder, np.array([20120617, 20130617], dtype=np.int32)).tolist() == [
        Dob.YEAR_ONLY, Dob.DIFFERENT]



@pytest.mark.parametrize("level", ["low", "high"])
def test_plain_python_and_numpy_scoring_agree(level, monkeypatch) -> None:
    """Scoring loops in plain Python over a few candidate rows and uses numpy over many:
    the two must give every row the same levels and the same total, to the last bit."""
    from mash.matching import compare
    from mash.matching import score as score_mod

    sc = scenario(3000, 150, level, seed=7, n_strangers=150)
    matcher = Matcher(sc.records)
    subjects = [q for q, _ in sc.in_records] + list(sc.strangers)

    def everything(few: int) -> list[tuple]:
        monkeypatch.setattr(score_mod, "FEW_ROWS", few)
        monkeypatch.setattr(compare, "FEW_DATES", few)
        out = []
        for q in subjects:
            s = matcher.scored(q)
            out.append((s.rows.tolist(), s.total.tolist(), s.given.tolist(), s.family.tolist(),
                        s.swapped.tolist(), s.dob.tolist(), s.postcode.tolist()))
        return out

    plain, vectorised = everything(10**9), everything(0)
    assert sum(len(rows) for rows, *_ in plain) > 200  # enough candidates to mean something
    assert plain == vectorised


def test_comparisons_of_one_name_against_many_agree_with_one_at_a_time() -> None:
    """`given_levels`, `family_levels` and `streets_alike_many` (the hot path of a large
    index, on string ids) must give exactly the level `compare_given`, `compare_family` and
    `streets_alike` give pair by pair, on generated names with typos, nicknames, initials,
    double-barrelled and missing names, and on real-looking streets; string features filled
    in one search are reused by the next."""
    from mash.matching.address import parse
    from mash.matching.compare import (
        family_levels,
        given_levels,
        streets_alike,
        streets_alike_many,
    )
    from mash.matching.features import StringFeatures
    from mash.matching.index import NONE, Interner

    sc = scenario(1500, 300, "high", seed=11, n_strangers=300)
    people = [*sc.records, *(q for q, _ in sc.in_records)]
    givens = sorted({n.given.split(" ")[0] for p in people for n in p.names if n.given}
                    | {"a", "j", "jo", "bill", "william", "liz", "elizabeth", "mary ann",
                       "oylivia", "liv", "tdedy", "theodore", "mila", "amelia"})
    families = sorted({n.family for p in people for n in p.names if n.family}
                      | {"smith", "smith jones", "jones smith", "s", "lord"})
    streets = sorted({s for p in people for a in p.addresses if a
                      for s in parse(a).streets} | {"high street", "highstreet"})
    interner = Interner([*givens, *families, *streets])
    features = StringFeatures(interner)

    def ids(texts: list[str]) -> np.ndarray:  # NONE stands for a name not given
        return np.array([NONE, *(interner.get(t) for t in texts)], dtype=np.int64)

    def agree(many, one, queries: list[str], texts: list[str]) -> set:
        seen: set = set()
        for q in queries:
            got = many(features, q, ids(texts)).tolist()
            assert got == [one(q, r) for r in ["", *texts]], q
            seen.update(got)
        return seen

    assert agree(given_levels, compare_given,
                 [*givens[::7], "", "j", "william", "bill", "zzqx", "mary ann", "oylivia",
                  "liv", "theodore", "mila"], givens) >= {
        Given.EXACT, Given.NICKNAME, Given.FUZZY, Given.PHONETIC, Given.INITIAL,
        Given.DIFFERENT, Given.MISSING}
    assert agree(family_levels, compare_family,
                 [*families[::7], "", "smith", "smith jones", "jones", "smithjones"],
                 families) >= {Family.EXACT, Family.PART, Family.FUZZY, Family.PHONETIC,
                               Family.DIFFERENT, Family.MISSING}
    queries = [*streets[::5], "", "high st", "hihg street"]
    assert agree(streets_alike_many, streets_alike, queries, streets) >= {True, False}
    assert features.known[ids(streets)].all()  # worked out once, kept for the next search


def crowd_of_namesakes() -> tuple[Matcher, list]:
    """An index where one family name is very common (a block of hundreds, as a common
    surname gives a large index), some of them written in two words ('Smith Jones'), and the
    subjects asked about them: held people typed with errors, strangers, namesakes."""
    import random

    from mash.synth.corrupt import scenario

    rng = random.Random(3)
    givens = ["john", "jon", "joan", "jane", "jan", "mohammed", "muhammad", "amelia", "amy",
              "zebedee", "oliver", "olivia", "jack", "jake", "ava", "eva"]
    families = ["smith", "smyth", "smithe", "smith jones", "smithjones", "smit"]
    crowd = [record(rng.choice(givens), rng.choice(families),
                    f"{rng.choice([1990, 1991])}-{rng.randint(1, 12):02d}-"
                    f"{rng.randint(1, 28):02d}", rng.choice(["LS6 1AA", "LS6 1AB", "BD5 7HJ",
                                                              "WF1 3LP", "HX1 2RS"]),
                    sex=rng.choice("MF"), record_id=f"crowd{i}",
                    address=f"{rng.randint(1, 40)} {rng.choice(['Mill Lane', 'High St'])}")
             for i in range(600)]
    sc = scenario(2000, 120, "high", seed=13, n_strangers=120)
    matcher = Matcher([*sc.records, *crowd])
    subjects = [q for q, _ in sc.in_records] + list(sc.strangers) + [
        subject(g, f, f"1990-{m:02d}-{d:02d}", pc, sex=sx, address=a)
        for g, f, m, d, pc, sx, a in [
            ("John", "Smith", 3, 7, "LS6 1AA", "M", "12 Mill Lane"),
            ("Zebedee", "Smyth", 5, 5, "BD5 7HJ", "M", ""),
            ("Amelia", "Smithjones", 1, 1, "HX1 2RS", "F", "3 High Street"),
            ("Amelia", "Smith Jones", 6, 21, "WF1 3LP", "F", ""),
            ("Jane", "Smith", 12, 28, "LS6 1AB", "F", "40 High St")]]
    subjects += [subject(r.names[0].given, r.names[0].family, r.date_of_birth.isoformat(),
                         *r.postcodes, sex=r.sex) for r in crowd[:40]]
    return matcher, subjects


def test_a_floor_drops_only_rows_that_cannot_reach_it() -> None:
    """`Matcher.rank` scores under the possible threshold as a floor, dropping rows whose
    bound cannot reach it before their place is compared: it must rank exactly the rows,
    scores, bands and reasons scoring every row does, while scoring far fewer rows; every
    bound is at least what it bounds (a family name in two words, agreeing exactly with one
    written without the space, included)."""
    from mash.matching.blocking import query_keys
    from mash.matching.engine import ranked_of
    from mash.matching.score import best_names, names_bound, names_ceiling

    matcher, subjects = crowd_of_namesakes()
    index, model = matcher.index, matcher.model
    floor = model.thresholds.possible
    examined = kept = pruned_queries = 0
    for q in subjects:
        rows = index.candidates(query_keys(q))
        full = score(index, q, rows, model)
        under = score(index, q, rows, model, floor=floor)
        ranked, seen = matcher.rank(q)
        assert ranked == ranked_of(full, model) == ranked_of(under, model)
        assert seen == under.examined == len(rows)
        at = np.searchsorted(full.rows, under.rows)
        assert (full.rows[at] == under.rows).all()
        assert full.total[at].tolist() == under.total.tolist()  # to the last bit
        weights = best_names(index, model, q, rows)[0]
        bound = names_bound(index, model, q, rows)
        assert (bound >= weights).all()
        assert not len(rows) or names_ceiling(index, model, q) >= weights.max()
        examined += len(rows)
        kept += len(under.rows)
        pruned_queries += len(under.rows) < len(rows)
    # positive control: the crowd makes blocks large enough to prune, and pruning happens
    assert examined > 10_000 and kept < examined / 4 and pruned_queries > 40


def test_a_row_exactly_at_the_floor_is_kept() -> None:
    """The bound and the total add the same weights in another order: a row whose total is
    the floor itself must not be lost to rounding."""
    from mash.matching.blocking import query_keys

    matcher, subjects = crowd_of_namesakes()
    index, model = matcher.index, matcher.model
    checked = 0
    for q in subjects[-45:]:  # those about the crowd: blocks large enough to prune
        rows = index.candidates(query_keys(q))
        full = score(index, q, rows, model)
        if len(rows) <= 64:
            continue
        best = float(full.total.max())
        under = score(index, q, rows, model, floor=best)
        assert best in under.total.tolist()
        above = score(index, q, rows, model, floor=best + 100)
        assert len(above.rows) < len(rows)  # positive control: a floor out of reach drops
        checked += 1
    assert checked > 30
