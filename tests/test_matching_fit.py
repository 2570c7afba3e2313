"""Fitting m and u from labelled synthetic data: the fitted table says what the data says."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mash.matching.compare import Agree, Dob, Family, Given, Postcode
from mash.matching.fit import KEEP_U, KEPT, Counts, count, fit, render, write_table
from mash.matching.weights import HAND_SET, MU
from mash.synth.corrupt import scenario


def bits(table, field_name: str, level: int) -> float:
    m, u = table[field_name][level]
    return math.log2(m / u)


@pytest.fixture(scope="module")
def fitted():
    sc = scenario(3000, 600, "medium", seed=909, n_strangers=300)
    counts = count(sc, np.random.default_rng(909), name_sample=300)
    return counts, *fit(counts)


def test_every_true_pair_and_some_non_pairs_are_counted(fitted) -> None:
    counts, _, _ = fitted
    assert counts.true_pairs == 600
    assert counts.non_pairs > 100_000
    # every true pair has a date-of-birth level (a missing one included)
    assert counts.m["dob"].sum() == 600


def test_an_exact_date_of_birth_weighs_more_than_the_year_alone(fitted) -> None:
    _, table, _ = fitted
    assert bits(table, "dob", Dob.EXACT) > bits(table, "dob", Dob.YEAR_ONLY) > 0
    assert bits(table, "dob", Dob.EXACT) > bits(table, "dob", Dob.ONE_PART) > 0
    assert bits(table, "dob", Dob.DIFFERENT) < 0
    # most true pairs agree exactly; two random people almost never do
    m, u = table["dob"][Dob.EXACT]
    assert m > 0.7 and u < 1e-3


def test_names_agreeing_beat_names_differing(fitted) -> None:
    _, table, _ = fitted
    assert bits(table, "given", Given.EXACT) > bits(table, "given", Given.NICKNAME) > 0
    assert bits(table, "family", Family.EXACT) > 0 > bits(table, "family", Family.DIFFERENT)


def test_what_the_generator_cannot_tell_keeps_the_hand_set_value(fitted) -> None:
    _, table, kept = fitted
    for name in KEPT:
        assert table[name] == HAND_SET[name]
    assert table["given"][Given.INITIAL] == HAND_SET["given"][Given.INITIAL]  # never generated
    assert Given.INITIAL in kept["given"]
    for name, level in KEEP_U:
        assert table[name][level][1] == HAND_SET[name][level][1]
        assert table[name][level][0] != HAND_SET[name][level][0]  # m is still fitted


def test_a_level_seen_too_rarely_is_not_fitted() -> None:
    counts = Counts()
    counts.m["dob"][Dob.EXACT] = 1000
    counts.u["dob"][Dob.EXACT] = 1000
    counts.u["dob"][Dob.DIFFERENT] = 10**6
    table, kept = fit(counts)
    assert Dob.DIFFERENT in kept["dob"] and Dob.EXACT not in kept["dob"]
    assert table["dob"][Dob.DIFFERENT] == HAND_SET["dob"][Dob.DIFFERENT]


def test_the_rendered_table_is_the_table(fitted, tmp_path) -> None:
    _, table, kept = fitted
    text = render(table, kept, "a test")
    target = tmp_path / "weights.py"
    target.write_text("before\n# BEGIN FITTED TABLE\nold\n# END FITTED TABLE\nafter\n")
    write_table(target, text)
    namespace = {"Given": Given, "Family": Family, "Dob": Dob, "Postcode": Postcode,
                 "Agree": Agree}
    source = target.read_text()
    assert source.startswith("before\n") and source.endswith("after\n")
    exec(source.split("before\n")[1].split("after\n")[0], namespace)  # noqa: S102
    for name, levels in table.items():
        for level, (m, u) in levels.items():
            assert namespace["MU"][name][level] == pytest.approx((m, u), rel=1e-2)


def test_the_committed_table_is_fitted() -> None:
    """The runtime table differs from the hand-set one where the data spoke, and keeps it
    where it could not."""
    assert MU["dob"][Dob.ONE_OFF] != HAND_SET["dob"][Dob.ONE_OFF]
    # the generator only slips by one: a larger slip keeps its hand-set weight, below
    assert MU["dob"][Dob.ONE_PART] == HAND_SET["dob"][Dob.ONE_PART]
    assert bits(MU, "dob", Dob.ONE_OFF) > bits(MU, "dob", Dob.ONE_PART)
    assert MU["sex"] == HAND_SET["sex"] and MU["identifier"] == HAND_SET["identifier"]
    assert bits(MU, "dob", Dob.EXACT) > bits(MU, "dob", Dob.YEAR_ONLY)
