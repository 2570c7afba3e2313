"""Scoring candidate rows: the sum of Fellegi-Sunter weights over every field, for all
candidates of one subject at once."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mash.matching.blocking import first_given, query_name_variants
from mash.matching.compare import (
    Agree,
    Dob,
    Family,
    Given,
    Postcode,
    compare_dob,
    compare_exact,
    compare_family,
    compare_given,
    compare_postcodes,
)
from mash.matching.index import NONE, SEX_CODES, MatchIndex
from mash.matching.weights import SWAPPED_NAME_PENALTY, Weights
from mash.normalise import postcode_district, postcode_sector
from mash.subject import SubjectQuery


@dataclass
class Scored:
    """Per candidate row: the total weight and the level each field compared at."""

    rows: np.ndarray
    total: np.ndarray
    given: np.ndarray
    family: np.ndarray
    swapped: np.ndarray
    dob: np.ndarray
    postcode: np.ndarray
    sex: np.ndarray
    identifiers: dict[str, np.ndarray] = field(default_factory=dict)

    def names_agree(self) -> np.ndarray:
        """Both names agree at least phonetically (or by nickname, initial, second forename)."""
        return (self.given <= Given.INITIAL) & (self.family <= Family.PHONETIC)

    def any_identifier(self, level: Agree) -> np.ndarray:
        out = np.zeros(len(self.rows), dtype=bool)
        for levels in self.identifiers.values():
            out |= levels == level
        return out


def _levels(index: MatchIndex, weights: Weights, query: str, ids: set[int],
            family: bool) -> dict[int, tuple[int, float]]:
    """Level and weight of each distinct record name (string id) against one query name."""
    strings = index.strings.strings
    compare, exact, table = ((compare_family, Family.EXACT, weights.family) if family else
                             (compare_given, Given.EXACT, weights.given))
    field_name = "family" if family else "given"
    by_level = table.tolist()
    out = {}
    for sid in ids:
        level = compare(query, strings[sid] if sid != NONE else "")
        # how common the string is as any name: a surname typed as a given name (swapped
        # names) is as common as the surname
        out[sid] = (level, weights.exact_name(field_name, int(index.given_count[sid])
                                              + int(index.family_count[sid]), index.name_rows)
                    if level == exact else by_level[level])
    return out


def _best_names(index: MatchIndex, weights: Weights, subject: SubjectQuery,
                rows: np.ndarray) -> tuple[list[float], list[int], list[int], list[bool]]:
    """Per candidate row: the best agreement over every (query name or swapped variant,
    record name) pair, as (weight, given level, family level, swapped).

    Plain Python over the candidates' name rows: a search examines tens of rows, for which
    numpy's cost per call outweighs the work (the string comparisons themselves are cached).
    Ties keep the first variant and the first record name, in order.
    """
    n = len(rows)
    best_w, best_g = [0.0] * n, [Given.MISSING] * n
    best_f, best_s = [Family.MISSING] * n, [False] * n
    variants = query_name_variants(subject)
    if not variants or not n:
        return best_w, best_g, best_f, best_s
    starts = index.name_start[rows].tolist()
    ends = index.name_start[rows + 1].tolist()
    flat = [j for a, b in zip(starts, ends, strict=True) for j in range(a, b)]
    if not flat:
        return best_w, best_g, best_f, best_s
    gids = index.name_given[flat].tolist()
    fids = index.name_family[flat].tolist()
    oids = index.name_other[flat].tolist()
    other_gain = float(weights.given[Given.OTHER_FORENAME] - weights.given[Given.DIFFERENT])
    originals = len(subject.names)
    compared = []
    for v, variant in enumerate(variants):
        q_given = first_given(variant)
        compared.append((_levels(index, weights, q_given, set(gids), family=False),
                         _levels(index, weights, variant.family, set(fids), family=True),
                         index.strings.get(q_given), v >= originals))
    first = 0  # where candidate i's names start in the flat lists
    for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
        top = -math.inf
        for k in range(first, first + b - a):
            g_id, f_id, o_id = gids[k], fids[k], oids[k]
            for given, family, other_id, swapped in compared:
                g, gw = given[g_id]
                f, fw = family[f_id]
                w = gw + fw
                # the query's given name is the record's second forename
                if other_id != NONE and o_id == other_id and g == Given.DIFFERENT:
                    w, g = w + other_gain, Given.OTHER_FORENAME
                if swapped:
                    w = w - SWAPPED_NAME_PENALTY
                if w > top:
                    top = best_w[i] = w
                    best_g[i], best_f[i], best_s[i] = g, f, swapped
        first += b - a
    return best_w, best_g, best_f, best_s


def score(index: MatchIndex, subject: SubjectQuery, rows: np.ndarray,
          weights: Weights) -> Scored:
    n = len(rows)
    total = np.zeros(n, dtype=np.float64)
    names = _best_names(index, weights, subject, rows)
    total += np.array(names[0], dtype=np.float64)
    best_g = np.array(names[1], dtype=np.int8)
    best_f = np.array(names[2], dtype=np.int8)
    best_s = np.array(names[3], dtype=bool)

    dob = compare_dob(subject.date_of_birth, index.dob[rows])
    total += weights.dob[dob]

    strings = index.strings
    pcs = list(subject.postcodes)
    postcode = compare_postcodes(
        [p.encode() for p in pcs],
        [s for s in (strings.get(postcode_sector(p)) for p in pcs) if s != NONE],
        [d for d in (strings.get(postcode_district(p)) for p in pcs) if d != NONE],
        index.postcode[rows], index.sector[rows], index.district[rows])
    total += weights.postcode[postcode]

    sex = compare_exact(SEX_CODES[subject.sex] if subject.sex else None, index.sex[rows], 0)
    total += weights.sex[sex]

    identifiers = {}
    for kind, value in subject.identifiers.items():
        column = index.identifiers.get(kind)
        if column is None:
            continue
        levels = compare_exact(value.encode(), column[rows], b"")
        identifiers[kind] = levels
        total += weights.identifier[levels]
    return Scored(rows, total, best_g, best_f, best_s, dob, postcode, sex, identifiers)


_GIVEN_WHY = {Given.EXACT: "given_name", Given.NICKNAME: "given_name:nickname",
              Given.FUZZY: "given_name:similar", Given.PHONETIC: "given_name:sounds_alike",
              Given.OTHER_FORENAME: "given_name:other_forename",
              Given.INITIAL: "given_name:initial"}
_FAMILY_WHY = {Family.EXACT: "family_name", Family.PART: "family_name:part",
               Family.FUZZY: "family_name:similar", Family.PHONETIC: "family_name:sounds_alike"}
_DOB_WHY = {Dob.EXACT: "date_of_birth", Dob.SWAPPED: "date_of_birth:day_month_swapped",
            Dob.ONE_PART: "date_of_birth:one_part_differs",
            Dob.ONE_OFF: "date_of_birth:one_part_differs", Dob.YEAR_ONLY: "date_of_birth:year"}
_POSTCODE_WHY = {Postcode.FULL: "postcode", Postcode.SECTOR: "postcode_sector",
                 Postcode.DISTRICT: "postcode_district"}


def matched_on(scored: Scored, i: int) -> tuple[str, ...]:
    """What agreed for the i-th scored row, in words an analyst can check."""
    why = [kind for kind, levels in scored.identifiers.items() if levels[i] == Agree.AGREE]
    for table, level in ((_GIVEN_WHY, scored.given[i]), (_FAMILY_WHY, scored.family[i])):
        if int(level) in table:
            why.append(table[int(level)])
    if scored.swapped[i]:
        why.append("names_swapped")
    for table, level in ((_DOB_WHY, scored.dob[i]), (_POSTCODE_WHY, scored.postcode[i])):
        if int(level) in table:
            why.append(table[int(level)])
    if scored.sex[i] == Agree.AGREE:
        why.append("sex")
    return tuple(why)
