"""Blocking keys: each kind of key finds what it is for, and nothing is random."""

from __future__ import annotations

import subprocess
import sys

from mash.matching.blocking import KEY_VERSION, query_keys, record_keys
from tests.matching_helpers import record, subject

LEAH = record("Leah", "Thompson", "2014-05-07", "LS9 8AB", "LS8 2QT", sex="F",
              middle="Marie", nhs_number="9434765919")


def shared(rec, subj) -> set[str]:
    return record_keys(rec) & query_keys(subj)


def prefixes(keys: set[str]) -> set[str]:
    return {k.split(":", 1)[0] for k in keys}


def test_record_keys_are_exactly_these() -> None:
    # A golden value: the blind broker hashes these strings, so they must never drift.
    assert KEY_VERSION == 6
    assert record_keys(LEAH) == {
        "nhs:9434765919",
        "db:2014-05-07",
        "nd:leah:thompson:2014-05-07",
        "na:leah:thompson",
        "pc:LS9 8AB:t", "pc:LS8 2QT:t",
        "ng:leah:T512:2014-05-07",
        "sy:T512:2014",
        "md:05-07:T512",
        "gy:L000:2014:LS9", "gy:L000:2014:LS8",
        "ps:LS9 8:T512", "ps:LS8 2:T512",
    }


def test_address_keys_are_exactly_these() -> None:
    """A house number at its postcode, on its street, and the exact name (and the family name
    alone) on the street."""
    at_home = record("Leah", "Thompson", None, "LS9 8AB", address="Flat 2, 14 Beech Grove, Leeds")
    assert {k for k in record_keys(at_home) if k[:2] in ("pa", "an", "nw", "fw", "nh")} == {
        "pa:LS9 8AB:14", "an:14:B200", "nw:leah:T512:B200", "fw:thompson:B200",
        "nh:leah:thompson:14"}


def test_the_address_finds_a_person_whose_names_and_date_are_damaged() -> None:
    held = record("Leah", "Thompson", "2014-05-07", address="14 Beech Grove, Leeds")
    damaged = subject("Lea", "Tomson", "2014-07-05", address="14 Beach Grove")  # no postcode
    assert prefixes(shared(held, damaged)) >= {"an"}


def test_the_street_finds_a_family_name_whose_given_name_and_date_are_wrong() -> None:
    held = record("Josephine", "Kilby", "1994-11-16", address="Collicott Circuit, Success")
    asked = subject("", "Kilby", "1904-03-02", address="Collicott Circuit, Lassaan, Success")
    assert prefixes(shared(held, asked)) == {"fw"}


def test_the_house_number_finds_the_exact_name_whose_date_and_street_were_replaced() -> None:
    held = record("Annabelle", "Clapham", "1977-05-13", address="312 Francis Street, Worrigee")
    asked = subject("Annabelle", "Clapham", "1996-07-03",
                    address="312 Martley Circuit, Worrigee")
    assert prefixes(shared(held, asked)) == {"nh"}
    # positive control on both halves of the key: another number, or another given name at
    # the same number, shares nothing
    assert not shared(held, subject("Annabelle", "Clapham", "1996-07-03",
                                    address="31 Martley Circuit, Worrigee"))
    assert not shared(held, subject("Anna", "Clapham", "1996-07-03",
                                    address="312 Martley Circuit, Worrigee"))


def test_the_street_finds_a_mistyped_family_name_without_a_date() -> None:
    held = record("Aidan", "Broughan", "1988-02-14", address="32 Ryrie Street, Smithfield")
    asked = subject("Aidan", "Broughn", None, address="40 Ryrie Street, Smithfield")
    assert prefixes(shared(held, asked)) == {"nw"}
    # a family name that does not sound the same is another family on that street
    assert not shared(held, subject("Aidan", "Brown", None, address="40 Ryrie Street"))


def test_keys_are_deterministic_across_processes() -> None:
    code = ("from tests.test_matching_blocking import LEAH; from mash.matching.blocking import "
            "record_keys; print(sorted(record_keys(LEAH)))")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": seed}).stdout
            for seed in ("1", "2")}
    assert len(runs) == 1 and str(sorted(record_keys(LEAH))) in runs.pop()


def test_identifier_alone() -> None:
    keys = shared(LEAH, subject("Completely", "Different", None, nhs_number="9434765919"))
    assert keys == {"nhs:9434765919"}


def test_exact_name_and_date_of_birth() -> None:
    keys = shared(LEAH, subject("Leah", "Thompson", "2014-05-07"))
    assert "nd:leah:thompson:2014-05-07" in keys


def test_nickname_group_replaces_the_given_name() -> None:
    kate = record("Catherine", "Ward", "1990-03-04")
    assert "ng:catherine:W630:1990-03-04" in shared(kate, subject("Kate", "Ward", "1990-03-04"))
    bill = record("William", "Khan", "1980-11-20")
    assert "ng:william:K500:1980-11-20" in shared(bill, subject("Bill", "Khan", "1980-11-20"))


def test_phonetic_surname_and_year_catch_a_wrong_day_and_a_typo() -> None:
    keys = shared(LEAH, subject("Lea", "Tompson", "2014-08-21"))
    assert "sy:T512:2014" in keys


def test_placeholder_date_is_found_by_year_but_not_blocked_on_its_own() -> None:
    placeholder = record("Leah", "Thompson", "2014-01-01")
    assert "db:2014-01-01" not in record_keys(placeholder)  # 01/01 would be a huge block
    assert "sy:T512:2014" in shared(placeholder, subject("Leah", "Thompson", "2014-05-07"))


def test_day_month_swap_is_searched_on_the_query_side() -> None:
    query = subject("Leah", "Thompson", "2014-07-05")
    assert "db:2014-05-07" in query_keys(query) and "db:2014-07-05" in query_keys(query)
    assert "nd:leah:thompson:2014-05-07" in shared(LEAH, query)
    no_swap = query_keys(subject("Leah", "Thompson", "2014-05-13"))  # 13 cannot be a month
    assert {k for k in no_swap if k.startswith("db:")} == {"db:2014-05-13"}


def test_swapped_given_and_family_names() -> None:
    keys = shared(LEAH, subject("Thompson", "Leah", "2014-05-07"))
    assert "nd:leah:thompson:2014-05-07" in keys


def test_double_barrelled_surname_blocks_on_each_half() -> None:
    rec = record("Amy", "Smith-Jones", "2001-02-03")
    assert "sy:J520:2001" in shared(rec, subject("Amy", "Jones", "2001-06-09"))
    assert "sy:S530:2001" in shared(rec, subject("Amy", "Smith", "2001-06-09"))


def test_changed_family_name_found_by_given_name_year_and_district() -> None:
    keys = shared(LEAH, subject("Leah", "Okafor", "2014-09-09", "LS9 1ZZ"))
    assert prefixes(keys) == {"gy"}


def test_mistyped_year() -> None:
    keys = shared(LEAH, subject("Lea", "Thompson", "2004-05-07"))
    assert keys == {"md:05-07:T512"}


def test_wrong_date_of_birth_found_by_postcode_sector() -> None:
    keys = shared(LEAH, subject("L", "Thompson", "1999-12-30", "LS9 8ZZ"))
    assert keys == {"ps:LS9 8:T512"}


def test_exact_name_when_the_record_has_no_date_of_birth() -> None:
    undated = record("Leah", "Thompson", None, "LS8 2QT")
    assert "nm:leah:thompson" in shared(undated, subject("Leah", "Thompson", "2014-05-07"))
    assert shared(undated, subject("Leah", "Thompson", None)) == {"nm:leah:thompson",
                                                                  "na:leah:thompson"}
    # a dated record is not in the (large) exact-name block a dated subject asks for
    assert "nm:leah:thompson" not in record_keys(LEAH)


def test_exact_name_when_the_subject_has_no_date_of_birth() -> None:
    """A subject given without a date of birth, whose address has changed since, shares only
    the name with the record (the case the na key was added for)."""
    assert shared(LEAH, subject("Leah", "Thompson", None, "WF1 4HG")) == {"na:leah:thompson"}
    # a subject with a date of birth does not ask for the whole exact-name block
    assert not {k for k in query_keys(subject("Leah", "Thompson", "2001-01-02"))
                if k.startswith("na:")}


def test_same_full_postcode_whatever_the_name_and_date_say() -> None:
    """A surname typo that changes its Soundex, a wrong day, a nickname: the full postcode and
    the surname's first letter still meet (the case the pc key was added for)."""
    amelia = record("Amelia", "Williams", "1994-11-10", "LS20 4NN")
    keys = shared(amelia, subject("Amy", "Willigams", "1994-11-11", "LS20 4NN"))
    assert keys == {"pc:LS20 4NN:w"}
