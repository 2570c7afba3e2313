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

# Up to this many candidate rows, scoring loops in plain Python; above it, numpy (its cost
# per call is outweighed only by larger sets: measured at 100,000 and 1,000,000 records)
FEW_ROWS = 64


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


def _levels(index: MatchIndex, weights: Weights, query: str, ids: list[int],
            family: bool) -> tuple[list[int], list[float]]:
    """Level and weight of each distinct record name (string id) against one query name."""
    strings = index.strings.strings
    compare, exact, table = ((compare_family, Family.EXACT, weights.family) if family else
                             (compare_given, Given.EXACT, weights.given))
    field_name = "family" if family else "given"
    by_level = table.tolist()
    levels, out = [], []
    for sid in ids:
        level = compare(query, strings[sid] if sid != NONE else "")
        levels.append(level)
        # how common the string is as any name: a surname typed as a given name (swapped
        # names) is as common as the surname
        out.append(weights.exact_name(field_name, int(index.given_count[sid])
                                      + int(index.family_count[sid]), index.name_rows)
                   if level == exact else by_level[level])
    return levels, out


def _by_id(ids: list[int], compared: tuple[list[int], list[float]]
           ) -> dict[int, tuple[int, float]]:
    return dict(zip(ids, zip(*compared, strict=True), strict=True))


def _best_names_few(index: MatchIndex, weights: Weights, subject: SubjectQuery,
                    rows: np.ndarray) -> tuple[list[float], list[int], list[int], list[bool]]:
    """`best_names` in plain Python, for the tens of rows most searches examine: numpy's
    cost per call would outweigh the work (the string comparisons themselves are cached)."""
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
    g_ids, f_ids = list(set(gids)), list(set(fids))
    compared = []
    for v, variant in enumerate(variants):
        q_given = first_given(variant)
        compared.append((_by_id(g_ids, _levels(index, weights, q_given, g_ids, family=False)),
                         _by_id(f_ids, _levels(index, weights, variant.family, f_ids,
                                               family=True)),
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


def _name_rows(index: MatchIndex, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner position in rows, name row) for every name of every candidate row."""
    starts = index.name_start[rows]
    counts = (index.name_start[rows + 1] - starts).astype(np.int64)
    owner = np.repeat(np.arange(len(rows)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, np.repeat(starts, counts) + offsets


def _best_names_many(index: MatchIndex, weights: Weights, subject: SubjectQuery,
                     rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """`best_names` with numpy, for the hundreds of rows a search of a large index can
    examine."""
    n = len(rows)
    best_w = np.zeros(n, dtype=np.float64)
    best_g = np.full(n, Given.MISSING, dtype=np.int8)
    best_f = np.full(n, Family.MISSING, dtype=np.int8)
    best_s = np.zeros(n, dtype=bool)
    variants = query_name_variants(subject)
    if not variants or not n:
        return best_w, best_g, best_f, best_s
    owner, name_rows = _name_rows(index, rows)
    if not len(name_rows):
        return best_w, best_g, best_f, best_s
    oids = index.name_other[name_rows]
    uniq_g, inv_g = np.unique(index.name_given[name_rows], return_inverse=True)
    uniq_f, inv_f = np.unique(index.name_family[name_rows], return_inverse=True)
    g_ids, f_ids = uniq_g.tolist(), uniq_f.tolist()
    w_all = np.full(len(name_rows), -np.inf)
    g_all = np.full(len(name_rows), Given.MISSING, dtype=np.int8)
    f_all = np.full(len(name_rows), Family.MISSING, dtype=np.int8)
    s_all = np.zeros(len(name_rows), dtype=bool)
    originals = len(subject.names)
    for v, variant in enumerate(variants):
        q_given = first_given(variant)
        gl, gw = (np.array(a) for a in _levels(index, weights, q_given, g_ids, family=False))
        fl, fw = (np.array(a) for a in _levels(index, weights, variant.family, f_ids,
                                               family=True))
        g, f, w = gl[inv_g].astype(np.int8), fl[inv_f].astype(np.int8), gw[inv_g] + fw[inv_f]
        other_id = index.strings.get(q_given)
        if other_id != NONE:  # the query's given name is the record's second forename
            other = (oids == other_id) & (g == Given.DIFFERENT)
            if other.any():
                w = w + np.where(other, weights.given[Given.OTHER_FORENAME]
                                 - weights.given[Given.DIFFERENT], 0.0)
                g = np.where(other, Given.OTHER_FORENAME, g).astype(np.int8)
        if v >= originals:
            w = w - SWAPPED_NAME_PENALTY
        better = w > w_all
        w_all = np.where(better, w, w_all)
        g_all = np.where(better, g, g_all)
        f_all = np.where(better, f, f_all)
        s_all = np.where(better, v >= originals, s_all)
    order = np.lexsort((-w_all, owner))
    first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
    who = owner[first]
    best_w[who], best_g[who], best_f[who], best_s[who] = (
        w_all[first], g_all[first], f_all[first], s_all[first])
    return best_w, best_g, best_f, best_s


def best_names(index: MatchIndex, weights: Weights, subject: SubjectQuery,
               rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per candidate row: the best agreement over every (query name or swapped variant,
    record name) pair, as arrays of (weight, given level, family level, swapped). Ties keep
    the first variant and the first record name, in order. Two implementations of one rule,
    chosen by size (tests/test_matching_score.py proves they agree)."""
    if len(rows) > FEW_ROWS:
        return _best_names_many(index, weights, subject, rows)  # type: ignore[return-value]
    w, g, f, s = _best_names_few(index, weights, subject, rows)
    return (np.array(w, dtype=np.float64), np.array(g, dtype=np.int8),
            np.array(f, dtype=np.int8), np.array(s, dtype=bool))


def score(index: MatchIndex, subject: SubjectQuery, rows: np.ndarray,
          weights: Weights) -> Scored:
    n = len(rows)
    total = np.zeros(n, dtype=np.float64)
    best_w, best_g, best_f, best_s = best_names(index, weights, subject, rows)
    total += best_w

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
