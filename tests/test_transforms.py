"""Field transforms: each does what an agreement says, and bad parameters fail at load."""

from __future__ import annotations

import datetime as dt

import pytest

from mash.errors import ConfigError
from mash.policy import transforms as T

CTX = T.TransformContext(hmac_key=b"k" * 32, today=dt.date(2026, 11, 22))


@pytest.mark.parametrize(
    ("name", "value", "params", "expected"),
    [
        ("keep", "DA victim", {}, "DA victim"),
        ("nullify", "secret", {}, None),
        ("constant", "anything", {"value": "held"}, "held"),
        ("mask", "9434765919", {"first": 3, "last": 2}, "943*****19"),
        ("mask", "abc", {"first": 2, "last": 2}, "***"),
        ("mask", "AB12", {"last": 1, "char": "#"}, "###2"),
        ("year", "2014-05-17", {}, "2014"),
        ("month", "2014-05-17", {}, "2014-05"),
        ("age_band", "2014-05-17", {}, "11-15"),
        ("age_band", "2009-01-01", {"bands": [0, 18]}, "0-17"),
        ("age_band", "1990-01-01", {"bands": [0, 18]}, "18+"),
        ("district", "ls9 8ab", {}, "LS9"),
        ("sector", "LS9 8AB", {}, "LS9 8"),
        ("bucket", "84", {"bounds": [0, 50, 90], "labels": ["low", "mid", "high"]}, "mid"),
        ("bucket", "95.5", {"bounds": [0, 50, 90], "labels": ["low", "mid", "high"]}, "high"),
        ("keep", None, {}, None),
        ("month", None, {}, None),
    ],
)
def test_transforms(name, value, params, expected) -> None:
    T.validate_params(name, params, "test")
    assert T.apply(name, value, params, CTX) == expected


def test_hmac_is_keyed_stable_and_not_reversible() -> None:
    a = T.apply("hmac", "9434765919", {}, CTX)
    assert a == T.apply("hmac", " 9434765919 ", {}, CTX)
    assert a != T.apply("hmac", "9434765919", {}, T.TransformContext(hmac_key=b"x" * 32))
    assert len(a) == 16 and "9434765919" not in a
    assert len(T.apply("hmac", "x", {"length": 32}, CTX)) == 32


@pytest.mark.parametrize(
    ("name", "value", "params", "message"),
    [
        ("year", "not a date", {}, "not a date"),
        ("district", "nowhere", {}, "not a UK postcode"),
        ("bucket", "lots", {"bounds": [0], "labels": ["x"]}, "not a number"),
        ("bucket", "-5", {"bounds": [0], "labels": ["x"]}, "below every bucket"),
    ],
)
def test_values_that_do_not_fit_are_withheld_with_a_reason(name, value, params, message) -> None:
    with pytest.raises(T.TransformError, match=message):
        T.apply(name, value, params, CTX)


def test_hmac_without_a_key_is_withheld() -> None:
    with pytest.raises(T.TransformError, match="no hashing key"):
        T.apply("hmac", "x", {}, T.TransformContext())


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("shred", {}, "unknown transform 'shred'"),
        ("constant", {}, "needs 'value'"),
        ("mask", {"first": -1}, "whole number >= 0"),
        ("mask", {"middle": 2}, "does not take middle"),
        ("age_band", {"bands": [18, 5]}, "rising whole numbers"),
        ("hmac", {"length": 4}, "8 to 64"),
        ("bucket", {"bounds": [0, 50], "labels": ["x"]}, "as many labels as bounds"),
        ("bucket", {"bounds": [50, 0], "labels": ["x", "y"]}, "rising numbers"),
        ("keep", {"value": 1}, "does not take value"),
    ],
)
def test_bad_parameters_fail_at_load(name, params, message) -> None:
    with pytest.raises(ConfigError, match=message):
        T.validate_params(name, params, "mous/x.yaml: grants[0]")


def test_parameters_are_described_in_words_defaults_included() -> None:
    from mash.policy.transforms import describe

    assert describe("mask", {"first": 2, "last": 3}) == \
        "first 2 and last 3 character(s) shown, the rest as '*'"
    assert describe("bucket", {"bounds": [0, 50], "labels": ["low", "high"]}) == \
        "from 0: 'low'; from 50: 'high'; below the first: withheld"
    assert describe("age_band", {}) == \
        "bands 0-4, 5-10, 11-15, 16-17, 18-24, 25-64, 65+ (the default)"
    assert describe("age_band", {"bands": [0, 18]}) == "bands 0-17, 18+"
    assert describe("hmac", {}) == "first 16 hex characters of the agency's keyed hash"
    assert describe("constant", {"value": "held"}) == "always 'held'"
    assert describe("keep", {}) == "" and describe("month", {}) == ""
