"""Field comparisons, each returning a comparison level (an agreement pattern).

Names are compared as strings (cached: the same few thousand names recur); dates, postcodes,
sex and identifiers are compared for many candidate rows at once with numpy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from rapidfuzz.distance import OSA, JaroWinkler
from rapidfuzz.process import cdist

from mash.matching import nicknames
from mash.matching.blocking import soundex
from mash.matching.features import StringFeatures
from mash.matching.index import NONE, dob_int


class Given:
    EXACT = 0
    NICKNAME = 1  # Bill / William
    FUZZY = 2  # Jaro-Winkler >= 0.90, or one typo
    PHONETIC = 3  # same Soundex, less alike
    OTHER_FORENAME = 4  # the query's given name is the record's second forename
    INITIAL = 5  # one side gives only an initial, and it agrees
    DIFFERENT = 6
    MISSING = 7
    SIZE = 8


class Family:
    EXACT = 0
    PART = 1  # one half of a double-barrelled name: Smith / Smith Jones
    FUZZY = 2  # Jaro-Winkler >= 0.92, or one typo
    PHONETIC = 3
    DIFFERENT = 4
    MISSING = 5
    SIZE = 6


class Dob:
    """Levels are plain ints (not an Enum): they index weight arrays in the hot path."""

    EXACT = 0
    SWAPPED = 1  # day and month swapped
    ONE_PART = 2  # two of day, month and year agree, the third looks mistyped (one digit)
    YEAR_ONLY = 3  # one side is a 01/01 placeholder and the years agree
    DIFFERENT = 4
    MISSING = 5
    # two agree and the third is off by one: the next day or month, a year off by one or ten.
    # Split from ONE_PART because two different people meet here far less often (fitted u),
    # while ONE_PART keeps the weight a digit slip of any size had before (set by hand).
    ONE_OFF = 6
    SIZE = 7


class Postcode:
    FULL = 0
    SECTOR = 1
    DISTRICT = 2
    DIFFERENT = 3
    MISSING = 4
    SIZE = 5


class Address:
    """How two addresses compare (before the postcode is taken into account)."""

    PREMISES = 0  # the same house number or name (flats agree or one is unknown), same street
    STREET = 1  # the same street (alike), another number or none
    LOCALITY = 2  # a word of the locality in common (district, town)
    DIFFERENT = 3
    MISSING = 4
    SIZE = 5


class Place:
    """Where the person lives: the postcode and the address compared together, so that one
    place is not counted twice (a full postcode and a house number on its street are one
    piece of evidence, not two independent ones)."""

    PREMISES_POSTCODE = 0  # the same dwelling and the same full postcode
    PREMISES = 1  # the same dwelling; no full postcode in common (one unknown, or a typo)
    POSTCODE = 2  # the same full postcode, the dwelling another one or unknown
    STREET = 3  # the same street, another number, the same area
    SECTOR = 4  # the same postcode sector
    AREA = 5  # the same postcode district, or a locality word in common
    DIFFERENT = 6
    MISSING = 7
    SIZE = 8


# Place by (postcode level, address level): rows are Postcode levels, columns Address levels
PLACE_TABLE = np.array([
    # PREMISES          STREET        LOCALITY      DIFFERENT        MISSING
    [Place.PREMISES_POSTCODE, Place.POSTCODE, Place.POSTCODE, Place.POSTCODE, Place.POSTCODE],
    [Place.PREMISES, Place.STREET, Place.SECTOR, Place.SECTOR, Place.SECTOR],  # SECTOR
    [Place.PREMISES, Place.STREET, Place.AREA, Place.AREA, Place.AREA],  # DISTRICT
    [Place.STREET, Place.DIFFERENT, Place.AREA, Place.DIFFERENT, Place.DIFFERENT],  # DIFFERENT
    [Place.PREMISES, Place.STREET, Place.AREA, Place.DIFFERENT, Place.MISSING],  # MISSING
], dtype=np.int8)


def place_levels(postcode: np.ndarray, address: np.ndarray) -> NDArray[np.int8]:
    levels: NDArray[np.int8] = PLACE_TABLE[postcode, address]
    return levels


class Agree:
    AGREE = 0
    DISAGREE = 1
    MISSING = 2
    SIZE = 3


# Up to this many rows, dates are compared one distinct date at a time in plain Python;
# above it, with numpy (they break even at about 100 different dates; many repeats favour
# plain Python).
FEW_DATES = 64


def _typos(a: str, b: str) -> bool:
    """One keyboard slip (substitution, insertion, deletion, transposition) in a name of 3+
    letters: 'aca'/'ava', 'mgrgaret'/'margaret'. (Two slips would make 'whithall' and
    'wainhall' one name: surnames share too many endings.)"""
    if min(len(a), len(b)) < 3:
        return False
    return OSA.distance(a, b, score_cutoff=1) <= 1


@lru_cache(maxsize=200_000)
def compare_given(query: str, record: str) -> int:
    """Two one-word given names (folded)."""
    if not query or not record:
        return Given.MISSING
    if query == record:
        return Given.EXACT
    if len(query) == 1 or len(record) == 1:
        return Given.INITIAL if query[0] == record[0] else Given.DIFFERENT
    if nicknames.same_group(query, record):
        return Given.NICKNAME
    if (JaroWinkler.similarity(query, record) >= 0.90 or _typos(query, record)
            or nicknames.slipped_nickname(query, record)):
        return Given.FUZZY
    if soundex(query) == soundex(record):
        return Given.PHONETIC
    return Given.DIFFERENT


@lru_cache(maxsize=200_000)
def compare_family(query: str, record: str) -> int:
    """Two family names (folded, words separated by spaces: 'smith jones')."""
    if not query or not record:
        return Family.MISSING
    q, r = query.replace(" ", ""), record.replace(" ", "")
    if q == r:
        return Family.EXACT
    q_parts, r_parts = query.split(), record.split()
    if (len(q_parts) > 1 or len(r_parts) > 1) and set(q_parts) & set(r_parts):
        return Family.PART
    if JaroWinkler.similarity(q, r) >= 0.92 or _typos(q, r):
        return Family.FUZZY
    if soundex(q) == soundex(r):
        return Family.PHONETIC
    return Family.DIFFERENT


def _alike(query: str, records: Sequence[str], lengths: np.ndarray, similar: float
            ) -> NDArray[np.bool_]:
    """Per record: Jaro-Winkler >= ``similar`` or one slip (`_typos`) from ``query``, in one
    pass of rapidfuzz's C loops over all of them."""
    jw = cdist([query], records, scorer=JaroWinkler.similarity, dtype=np.float64,
               workers=1)[0]
    osa = cdist([query], records, scorer=OSA.distance, score_cutoff=1, dtype=np.int32,
                workers=1)[0]
    alike: NDArray[np.bool_] = (jw >= similar) | (
        (osa <= 1) & (np.minimum(lengths, len(query)) >= 3))
    return alike


def given_levels(features: StringFeatures, query: str, ids: np.ndarray,
                 counts: np.ndarray | None = None) -> np.ndarray:
    """`compare_given` of one query name against many record names (string ids) at once:
    the hundreds of distinct names of a large index's candidates, where one call per name
    would dominate a search. The same rule (tests/test_matching_score.py proves they agree);
    the rare name that is not one plain word is compared the one-at-a-time way.

    ``counts``: the records holding each string id as a first given name (the index's
    ``given_count``). With them, a name the agency holds twice or more is a name, not a
    slip: it is never a slipped nickname (`nicknames.slipped_nickname`), so 'mila' is not
    'mia' slipped (Amelia) where the records hold Milas."""
    n = len(ids)
    if not query:
        return np.full(n, Given.MISSING, dtype=np.int8)
    slots = features.slots(ids)
    texts = features.texts(slots)
    if query.split() != [query]:
        return np.array([compare_given(query, t) for t in texts], dtype=np.int8)
    lengths, plain = features.length[slots], features.plain[slots]
    out = np.full(n, Given.DIFFERENT, dtype=np.int8)
    out[features.sound[slots] == features.code(query)] = Given.PHONETIC
    out[_slipped_nicknames(features, query, ids, slots, texts, counts)] = Given.FUZZY
    out[_alike(query, texts, lengths, 0.90)] = Given.FUZZY
    out[np.isin(ids, features.ids_of(nicknames.sharing_group(query)))] = Given.NICKNAME
    short = (lengths == 1) if len(query) > 1 else np.ones(n, dtype=bool)
    out[short] = np.where(features.first[slots][short] == ord(query[0]), Given.INITIAL,
                          Given.DIFFERENT)
    out[ids == features.id_of(query)] = Given.EXACT
    out[lengths == 0] = Given.MISSING
    for i in np.nonzero(~plain & (lengths > 0))[0].tolist():
        out[i] = compare_given(query, texts[i])
    return out


def _slipped_nicknames(features: StringFeatures, query: str, ids: np.ndarray,
                       slots: np.ndarray, texts: list[str], counts: np.ndarray | None
                       ) -> NDArray[np.bool_]:
    """Per record name: it and the query are nicknames of one another with one slip in
    one of them (`nicknames.slipped_nickname`), the slipped one held fewer than twice."""
    def rare(sid: int) -> bool:
        return counts is None or sid == NONE or int(counts[sid]) < 2

    out = np.zeros(len(ids), dtype=bool)
    if rare(features.id_of(query)):  # the query slipped: the nicknames of what it meant
        meant = nicknames.slip_mates(query)
        if meant:
            out |= np.isin(ids, features.ids_of(meant))
    # the record slipped: one slip, the first letter kept, from a nickname of the query's
    # that the table knows; only names of 3+ letters that start as one of those does are
    # compared (a few of a search's hundreds)
    mates = nicknames.slip_sources(query)
    if not mates:
        return out
    first_of = np.array([ord(m[0]) for m in mates], dtype=np.int32)
    first = features.first[slots]
    maybe = np.nonzero(np.isin(first, first_of) & (features.length[slots] >= 3))[0]
    if not len(maybe):
        return out
    near = cdist(mates, [texts[i] for i in maybe.tolist()], scorer=OSA.distance,
                 score_cutoff=1, dtype=np.int32, workers=1) <= 1
    near &= first_of[:, None] == first[maybe][None, :]
    for i in maybe[near.any(axis=0)].tolist():
        if not nicknames.in_table(texts[i]) and rare(int(ids[i])):
            out[i] = True
    return out


def family_levels(features: StringFeatures, query: str, ids: np.ndarray) -> np.ndarray:
    """`compare_family` of one query name against many record names at once (see
    `given_levels`); double-barrelled record names are compared one at a time."""
    n = len(ids)
    if not query:
        return np.full(n, Family.MISSING, dtype=np.int8)
    slots = features.slots(ids)
    texts = features.texts(slots)
    lengths, plain = features.length[slots], features.plain[slots]
    q, q_parts = query.replace(" ", ""), query.split()
    out = np.full(n, Family.DIFFERENT, dtype=np.int8)
    joined = features.joined(slots)
    out[(features.sound[slots] == features.code(q)) & (features.joined_length[slots] > 0)
        ] = Family.PHONETIC
    out[_alike(q, joined, features.joined_length[slots], 0.92)] = Family.FUZZY
    if len(q_parts) > 1:  # a plain record name is its only part
        out[np.isin(ids, features.ids_of(q_parts))] = Family.PART
    out[ids == features.id_of(q)] = Family.EXACT
    out[lengths == 0] = Family.MISSING
    for i in np.nonzero(~plain & (lengths > 0))[0].tolist():
        out[i] = compare_family(query, texts[i])
    return out


def _year_typo(y: int, qy: int) -> bool:
    """A year counts as mistyped only when one digit differs or the last two are transposed
    (2015/2016, 1985/1958); 2001 and 2015 are different years, not a typo."""
    digits = sum((y // 10**k) % 10 != (qy // 10**k) % 10 for k in range(4))
    return digits == 1 or (y // 100 == qy // 100 and y % 10 == (qy // 10) % 10
                           and (y // 10) % 10 == qy % 10)


def dob_level(query: dt.date, value: int) -> int:
    """The level of one yyyymmdd int (0 = unknown) against the query's date."""
    if value == 0:
        return Dob.MISSING
    if value == dob_int(query):
        return Dob.EXACT
    qy, qm, qd = query.year, query.month, query.day
    if qd <= 12 and qd != qm and value == qy * 10000 + qd * 100 + qm:
        return Dob.SWAPPED
    y, m, d = value // 10000, value // 100 % 100, value % 100
    if (m == 1 and d == 1) or (qm == 1 and qd == 1):  # 01/01 says nothing about day and month
        return Dob.YEAR_ONLY if y == qy else Dob.DIFFERENT
    # two of day, month and year agree (not all three: that was EXACT); the third is off by
    # one (ONE_OFF), or looks mistyped (ONE_PART), or the dates differ
    if y == qy and m == qm:
        return Dob.ONE_OFF if abs(d - qd) == 1 else Dob.ONE_PART
    if y == qy and d == qd:
        return Dob.ONE_OFF if abs(m - qm) == 1 else Dob.ONE_PART
    if m == qm and d == qd and _year_typo(y, qy):
        return Dob.ONE_OFF if abs(y - qy) in (1, 10) else Dob.ONE_PART
    return Dob.DIFFERENT


def compare_dob(query: dt.date | None, dobs: np.ndarray) -> np.ndarray:
    """Levels for a column of yyyymmdd ints (0 = unknown): `dob_level` for each distinct
    date (candidates share few dates, having been blocked on them) in plain Python for a few
    tens of rows, else `compare_dob_many` (numpy; the same rule, tests prove they agree)."""
    if query is None:
        return np.full(len(dobs), Dob.MISSING, dtype=np.int8)
    if len(dobs) > FEW_DATES:
        return compare_dob_many(query, dobs)
    seen: dict[int, int] = {}
    levels = [seen[v] if v in seen else seen.setdefault(v, dob_level(query, v))
              for v in dobs.tolist()]
    return np.array(levels, dtype=np.int8)


def compare_dob_many(query: dt.date, dobs: np.ndarray) -> np.ndarray:
    """`dob_level` over a whole column at once."""
    return dob_levels(np.int64(dob_int(query)), dobs)


def dob_levels(queries: np.ndarray | np.int64, dobs: np.ndarray) -> np.ndarray:
    """`dob_level` for yyyymmdd ints pairwise (``queries`` one value or one per row; 0 is
    unknown on either side)."""
    q = np.broadcast_to(np.asarray(queries, dtype=np.int64), dobs.shape)
    dobs = dobs.astype(np.int64)
    out = np.full(len(dobs), Dob.MISSING, dtype=np.int8)
    known = (dobs != 0) & (q != 0)
    y, m, d = dobs // 10000, dobs // 100 % 100, dobs % 100
    qy, qm, qd = q // 10000, q // 100 % 100, q % 100
    digits = sum(((y // 10**k) % 10 != (qy // 10**k) % 10).astype(np.int8) for k in range(4))
    year_typo = (digits == 1) | ((y // 100 == qy // 100) & (y % 10 == (qy // 10) % 10)
                                 & ((y // 10) % 10 == qy % 10))
    same = (y == qy).astype(np.int8) + (m == qm) + (d == qd)
    same[(y != qy) & ~year_typo] = 0
    placeholder = ((m == 1) & (d == 1)) | ((qm == 1) & (qd == 1))
    out[known] = Dob.DIFFERENT
    out[known & (same == 2)] = Dob.ONE_PART
    off_by_one = (np.abs(d - qd) == 1) | (np.abs(m - qm) == 1) | (np.abs(y - qy) == 1) | (
        np.abs(y - qy) == 10)
    out[known & (same == 2) & off_by_one] = Dob.ONE_OFF
    out[known & placeholder] = Dob.DIFFERENT
    out[known & placeholder & (y == qy)] = Dob.YEAR_ONLY
    swappable = (qd <= 12) & (qd != qm)
    out[known & swappable & (dobs == qy * 10000 + qd * 100 + qm)] = Dob.SWAPPED
    out[known & (dobs == q)] = Dob.EXACT
    return out


def compare_postcodes(full: list[int], sectors: list[int], districts: list[int],
                      rec_full: np.ndarray, rec_sector: np.ndarray,
                      rec_district: np.ndarray) -> np.ndarray:
    """Best level between any query postcode and any of each row's postcodes (string ids;
    -1 is none; a query postcode the index has never seen is any other negative id)."""
    out = np.full(len(rec_full), Postcode.MISSING, dtype=np.int8)
    if not full:
        return out
    out[(rec_full != -1).any(axis=1)] = Postcode.DIFFERENT
    for values, column, level in ((districts, rec_district, Postcode.DISTRICT),
                                  (sectors, rec_sector, Postcode.SECTOR),
                                  (full, rec_full, Postcode.FULL)):
        for value in values:  # one or two query postcodes: direct comparisons beat isin
            out[(column == value).any(axis=1)] = level
    return out


@lru_cache(maxsize=200_000)
def streets_alike(a: str, b: str) -> bool:
    """Two folded street names are one street: equal without their spaces
    ('pridhamstreet'), or one slip apart, or Jaro-Winkler >= 0.92 on the name part."""
    if not a or not b:
        return False
    qa, qb = a.replace(" ", ""), b.replace(" ", "")
    if qa == qb:
        return True
    return _typos(qa, qb) or JaroWinkler.similarity(qa, qb) >= 0.92


def streets_alike_many(features: StringFeatures, street: str, ids: np.ndarray
                       ) -> NDArray[np.bool_]:
    """`streets_alike` of one street against many (string ids) at once."""
    if not street or not len(ids):
        return np.zeros(len(ids), dtype=bool)
    slots = features.slots(ids)
    joined = features.joined(slots)
    named: NDArray[np.bool_] = features.length[slots] > 0
    return _alike(street.replace(" ", ""), joined, features.joined_length[slots], 0.92) & named


def compare_addresses(query: list[tuple[int, int, list[int], list[int]]],
                      number: np.ndarray, flat: np.ndarray, street: np.ndarray,
                      locality: np.ndarray) -> np.ndarray:
    """Best `Address` level between any query address and any of each row's addresses.

    ``query``: per address (number or name id, flat id, ids of the rows' streets alike its
    own, ids of its locality words); the columns are (rows, addresses) of ids
    and ``locality`` (rows, addresses, words); -1 is none."""
    out = np.full(len(number), Address.MISSING, dtype=np.int8)
    if not query:
        return out
    has = (number != -1) | (street != -1) | (locality != -1).any(axis=2)
    out[has.any(axis=1)] = Address.DIFFERENT
    for premises, q_flat, alike, words in query:
        if words:
            near = _any_of(locality, words).any(axis=(1, 2))
            out[near & (out > Address.LOCALITY)] = Address.LOCALITY
        if not alike:
            continue
        same_street = _any_of(street, alike)
        out[same_street.any(axis=1) & (out > Address.STREET)] = Address.STREET
        if premises != -1:
            flats = (flat == q_flat) | (flat == -1) | (q_flat == -1)
            here = (same_street & (number == premises) & flats).any(axis=1)
            out[here] = Address.PREMISES
    return out


def _any_of(column: np.ndarray, values: list[int]) -> NDArray[np.bool_]:
    """column == any of a few values (direct comparisons beat np.isin for a handful)."""
    out: NDArray[np.bool_] = column == values[0]
    for value in values[1:]:
        out |= column == value
    return out


def compare_exact(query: object, column: np.ndarray, absent: object) -> np.ndarray:
    """AGREE / DISAGREE / MISSING for a column against one query value (None: not given)."""
    out = np.full(len(column), Agree.MISSING, dtype=np.int8)
    if query is None:
        return out
    out[column != absent] = Agree.DISAGREE
    out[column == query] = Agree.AGREE
    return out
