"""UK normalisation the matcher depends on: names, NHS numbers, UPNs, postcodes."""

from __future__ import annotations

import random

import pytest

from mash.matching.blocking import family_joined, family_parts, first_given
from mash.normalise import (
    name_tokens,
    nhs_check_digit,
    normalise_name,
    normalise_nhs_number,
    normalise_postcode,
    normalise_upn,
    postcode_district,
    postcode_sector,
)
from mash.subject import Name
from mash.synth.population import nhs_number, upn


@pytest.mark.parametrize(("raw", "tokens"), [
    ("O'Brien", ["obrien"]),
    ("O\u2019Brien", ["obrien"]),
    ("Smith-Jones", ["smith", "jones"]),
    ("Mr Seán O'Brien-Smith Jnr", ["sean", "obrien", "smith"]),
    ("Dr. Zoë  D'Arcy", ["zoe", "darcy"]),
    ("MISS  kathleen", ["kathleen"]),
    ("Ms Renée-Louise", ["renee", "louise"]),
])
def test_name_tokens(raw: str, tokens: list[str]) -> None:
    assert name_tokens(raw) == tokens


def test_family_name_forms_for_double_barrelled_names() -> None:
    name = Name("leah", "", normalise_name("Smith-Jones"))
    assert name.family == "smith jones"
    assert family_joined(name) == "smithjones"
    assert family_parts(name) == ["smith", "jones", "smithjones"]
    assert first_given(Name("leah marie", "", "x")) == "leah"


def test_nhs_number_mod_11() -> None:
    assert normalise_nhs_number("943 476 5919") == "9434765919"
    assert normalise_nhs_number("943-476-5919") == "9434765919"
    assert normalise_nhs_number("9434765918") is None  # wrong check digit
    assert normalise_nhs_number("943476591") is None  # nine digits
    # weights 10..2; 11 - (sum mod 11) is the check digit, 11 -> 0, 10 -> no valid number
    assert nhs_check_digit("943476591") == 9
    first_nine = next(f"{i:09d}" for i in range(10**8, 10**9) if nhs_check_digit(f"{i:09d}")
                      is None)
    for digit in range(10):
        assert normalise_nhs_number(first_nine + str(digit)) is None
    rng = random.Random(5)
    for _ in range(200):
        assert normalise_nhs_number(nhs_number(rng)) is not None


def test_upn_format_and_check_letter() -> None:
    rng = random.Random(9)
    value = upn(rng)
    assert normalise_upn(value.lower()) == value
    assert normalise_upn(f" {value[:6]} {value[6:]} ") == value
    wrong_letter = ("A" if value[0] != "A" else "B") + value[1:]
    assert normalise_upn(wrong_letter) is None
    assert normalise_upn(value[:-1]) is None  # twelve characters
    assert normalise_upn("I" + value[1:]) is None  # I is not a check letter


@pytest.mark.parametrize(("raw", "postcode", "sector", "district"), [
    ("ls14ab", "LS1 4AB", "LS1 4", "LS1"),
    ("  ls1   4ab ", "LS1 4AB", "LS1 4", "LS1"),
    ("SW1A1AA", "SW1A 1AA", "SW1A 1", "SW1A"),
    ("bd10 9qz", "BD10 9QZ", "BD10 9", "BD10"),
    ("M1 1AE", "M1 1AE", "M1 1", "M1"),
])
def test_postcodes(raw: str, postcode: str, sector: str, district: str) -> None:
    assert normalise_postcode(raw) == postcode
    assert postcode_sector(postcode) == sector
    assert postcode_district(postcode) == district


@pytest.mark.parametrize("raw", ["LS1", "12345", "LS1 4A", "QQQ 1AB"])
def test_not_postcodes(raw: str) -> None:
    assert normalise_postcode(raw) is None
