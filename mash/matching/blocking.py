"""Blocking keys: which records are worth scoring for a subject.

A record is a candidate for a subject exactly when ``record_keys(record)`` and
``query_keys(subject)`` intersect. Both sides produce strings in one key space:

=========================================  =============================================
key                                        catches
=========================================  =============================================
``nhs:<n>`` ``upn:<u>`` ``pnc:<p>``        the same identifier, whatever the names say
``ni:<n>``
``nd:<given>:<family>:<dob>``              the exact name and full date of birth
``ng:<group>:<sx family>:<dob>``           a nickname (Bill/William) or family-name typo
                                           with the full date of birth
``sy:<sx family part>:<year>``             a given-name typo, wrong day/month, 01/01
                                           placeholder dates, one part of a double-barrelled
                                           surname
``gy:<sx given>:<year>:<district>``        a changed or badly mistyped family name (phonetic
                                           given name + year of birth + postcode district)
``db:<dob>``                               both names misspelt or changed (not for 01/01)
``md:<mm-dd>:<sx family>``                 a mistyped year of birth
``nm:<given>:<family>``                    the exact name, for records with no date of birth
                                           (on every record it would make blocks of
                                           thousands for common names in a large index)
``ps:<sector>:<sx family>``                a wrong or missing date of birth
``pc:<postcode>:<family initial>``         the same full postcode, whatever else differs (a
                                           surname typo that changes its Soundex, no date)
``na:<given>:<family>``                    the exact name, for a subject given without a date
                                           of birth (every record carries it; only such
                                           subjects ask for it, so its large blocks for
                                           common names are met only when nothing better is
                                           known, and a rare name alone can still be found)
``pa:<postcode>:<number>``                 the house number at the same full postcode,
                                           whatever the names and date say
``an:<number>:<sx street>``                the house number on a street that sounds the
                                           same (no postcode, or a wrong one)
``nw:<given>:<sx family>:<sx street>``     the given name on the same street, another number
                                           or none, the family name mistyped (its Soundex
                                           kept), no date of birth or a wrong one
``nh:<given>:<family>:<number>``           the exact name at the same house number or name,
                                           the date of birth and the street replaced (no
                                           postcode, or a wrong one)
``fw:<family>:<sx street>``                the exact family name on the same street: the
                                           given name missing or mistyped and the date of
                                           birth wrong, no postcode
=========================================  =============================================

The query side adds variants the record side does not need, because each is symmetric:
given and family names swapped, and the date of birth with day and month swapped (when both
are 12 or less). ``sx`` is Soundex; ``group`` is the canonical nickname group
(:mod:`mash.matching.nicknames`).

These functions are pure and deterministic: no randomness, no process state, no hashing
with a per-process seed. The blind broker derives keyed (HMAC) match tokens from exactly
these strings, so changing a key's format is a protocol change: keep ``KEY_VERSION`` in step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache

import jellyfish

from mash.matching import nicknames
from mash.matching.address import Address
from mash.matching.address import parse as parse_address
from mash.normalise import postcode_district, postcode_sector
from mash.records import PersonRecord
from mash.subject import Name, SubjectQuery

# 3: pc and na keys added; 4: address keys (pa, an, nw); 5: fw; 6: nh, and nw with the
# family name's Soundex
KEY_VERSION = 6

# Identifier kinds and their key prefixes (local identifiers are agency-scoped: not keyed).
_ID_PREFIX = {"nhs_number": "nhs", "upn": "upn", "pnc_id": "pnc", "ni_number": "ni"}


@lru_cache(maxsize=200_000)  # bounded: every distinct word of a load passes here
def soundex(word: str) -> str:
    """Soundex of one folded word ('' for an empty word)."""
    return jellyfish.soundex(word) if word else ""


def first_given(name: Name) -> str:
    """The first word of the given name: 'leah marie' -> 'leah'."""
    return name.given.split(" ", 1)[0] if name.given else ""


def family_joined(name: Name) -> str:
    """The family name as one word: 'smith jones' (from Smith-Jones) -> 'smithjones'."""
    return name.family.replace(" ", "")


def family_parts(name: Name) -> list[str]:
    """The family name's words, and the whole when it has several: both halves of a
    double-barrelled name block on their own."""
    parts = name.family.split()
    if len(parts) > 1:
        parts.append("".join(parts))
    return parts


def is_placeholder_date(value: dt.date) -> bool:
    """1 January is the usual stand-in for an unknown date of birth."""
    return value.month == 1 and value.day == 1


def swapped_date(value: dt.date) -> dt.date | None:
    """The date with day and month swapped, when that is a different valid date."""
    if value.day == value.month or value.day > 12:
        return None
    return value.replace(month=value.day, day=value.month)


def _name_keys(name: Name, dob: dt.date | None, postcodes: Iterable[str],
               exact_name: bool, any_date_name: bool) -> set[str]:
    """``exact_name``: the nm key (records without a date; every subject); ``any_date_name``:
    the na key (every record; subjects without a date)."""
    keys: set[str] = set()
    given = first_given(name)
    family = family_joined(name)
    sx_family = soundex(family)
    sx_parts = {soundex(p) for p in family_parts(name)}
    postcodes = list(postcodes)
    sectors = {postcode_sector(p) for p in postcodes}
    districts = {postcode_district(p) for p in postcodes}
    if exact_name and given and family:
        keys.add(f"nm:{given}:{family}")
    if any_date_name and given and family:
        keys.add(f"na:{given}:{family}")
    if family:
        for pc in postcodes:
            keys.add(f"pc:{pc}:{family[0]}")
    if dob is not None:
        iso = dob.isoformat()
        if given and family:
            keys.add(f"nd:{given}:{family}:{iso}")
            for group in nicknames.groups(given):
                keys.add(f"ng:{group}:{sx_family}:{iso}")
        for sx in sx_parts:
            keys.add(f"sy:{sx}:{dob.year}")
            keys.add(f"md:{dob.month:02d}-{dob.day:02d}:{sx}")
        if given:
            for district in districts:
                keys.add(f"gy:{soundex(given)}:{dob.year}:{district}")
    for sector in sectors:
        for sx in sx_parts:
            keys.add(f"ps:{sector}:{sx}")
    return keys


def _address_keys(names: Iterable[Name], postcodes: Iterable[str],
                  addresses: Iterable[Address], *, query: bool) -> set[str]:
    keys: set[str] = set()
    # (given, family, Soundex of the family) of each name
    parts = [(first_given(n), family_joined(n), soundex(family_joined(n))) for n in names]
    for address in addresses:
        # a record blocks on its street; a query on every line that may be its street
        streets = [soundex(s.split(" ", 1)[0]) for s in
                   (address.streets if query else address.streets[:1])]
        for sx in streets:
            for given, family, sx_family in parts:
                if family:
                    keys.add(f"fw:{family}:{sx}")
                if given and family:
                    keys.add(f"nw:{given}:{sx_family}:{sx}")
        number = address.number
        if not number:
            continue
        for given, family, _ in parts:
            if given and family:
                keys.add(f"nh:{given}:{family}:{number}")
        for pc in postcodes:
            keys.add(f"pa:{pc}:{number}")
        for sx in streets:
            keys.add(f"an:{number}:{sx}")
    return keys


def _identifier_keys(identifiers: dict[str, str]) -> set[str]:
    return {f"{_ID_PREFIX[kind]}:{value}" for kind, value in identifiers.items()
            if kind in _ID_PREFIX and value}


def _date_keys(dob: dt.date | None) -> set[str]:
    if dob is None or is_placeholder_date(dob):
        return set()
    return {f"db:{dob.isoformat()}"}


def record_keys(record: PersonRecord) -> set[str]:
    """Every blocking key of one record (all its names, all its postcodes)."""
    keys = _identifier_keys(record.identifiers) | _date_keys(record.date_of_birth)
    for name in record.names:
        keys |= _name_keys(name, record.date_of_birth, record.postcodes,
                           exact_name=record.date_of_birth is None, any_date_name=True)
    addresses = [a for a in (parse_address(t) for t in record.addresses[:3]) if a]
    return keys | _address_keys(record.names, record.postcodes, addresses, query=False)


def query_name_variants(subject: SubjectQuery) -> list[Name]:
    """The subject's names (each also with a given name split by a stray space joined up:
    "ro nan" -> "ronan"), then each with given and family names swapped (the swapped ones
    come after ``original_variants`` of them)."""
    out = original_variants(subject)
    for name in list(out):
        if name.given and name.family:
            swapped = Name(given=name.family, middle=name.middle, family=name.given)
            if swapped not in out:
                out.append(swapped)
    return out


def original_variants(subject: SubjectQuery) -> list[Name]:
    out = list(subject.names)
    for name in subject.names:
        words = name.given.split()
        if len(words) > 1 and len(words[0]) <= 3:  # "ro nan", not "leah marie"
            joined = Name(given="".join(words), middle=name.middle, family=name.family)
            if joined not in out:
                out.append(joined)
    return out


def query_dates(subject: SubjectQuery) -> list[dt.date | None]:
    """The subject's date of birth, and the same with day and month swapped."""
    dob = subject.date_of_birth
    if dob is None:
        return [None]
    swapped = swapped_date(dob)
    return [dob] if swapped is None else [dob, swapped]


def query_keys(subject: SubjectQuery) -> set[str]:
    """Every blocking key a record of this subject could carry."""
    names = query_name_variants(subject)
    # the address keys carry no date: made once, not once per date
    keys = _identifier_keys(subject.identifiers) | _address_keys(
        names, subject.postcodes, subject_addresses(subject), query=True)
    for dob in query_dates(subject):
        keys |= _date_keys(dob)
        for name in names:
            keys |= _name_keys(name, dob, subject.postcodes, exact_name=True,
                               any_date_name=dob is None)
    return keys


def subject_addresses(subject: SubjectQuery) -> list[Address]:
    """The subject's parsed addresses that say anything."""
    return [a for a in (parse_address(t) for t in subject.addresses) if a]
