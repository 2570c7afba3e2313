"""Estimating an agency's match model from its own records, without labels.

- u: random pairs of the agency's records are pairs of different people (duplicates are a
  vanishing share of all pairs), so the share of pairs at each comparison level is u. Every
  pair is used when there are few (up to a few million), else a random sample.
- Households: how much more often two records share a family name and an address (or a
  postcode) than the two shares multiplied, and how the members of those groups compare
  on given name and date of birth.
- m: each sampled record against a corrupted copy of itself (mash.matching.corruption):
  the share of those pairs at each level.

Each estimate is shrunk towards its prior (mash.matching.model.PRIOR) by a pseudo-count
worth a few events, so a level the records cannot speak for keeps its prior.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mash.matching.compare import Agree, Dob, Given, compare_given, dob_level, dob_levels
from mash.matching.corruption import TWIN_SHARE, Pools, View, corrupt
from mash.matching.index import NONE, MatchIndex, dob_int, pair_key
from mash.matching.model import (
    FIELDS,
    MISSING,
    Household,
    MatchModel,
    household_prior,
    prior_table,
    with_margins,
)
from mash.matching.score import score
from mash.records import PersonRecord
from mash.subject import SubjectQuery

PRIOR_EVENTS = 20.0  # a u prior is worth this many expected events among the pairs
M_PSEUDO = 50.0  # an m prior is worth this many simulated pairs
HOUSEHOLD_PSEUDO = 200.0  # the household prior is worth this many household pairs
TWIN_PSEUDO = 100.0  # the twin share's prior is worth this many household members
PAIRS = 200_000  # query-record pairs for names and places
DATE_PAIRS = 5_000_000
CHUNK = 500_000
MAX_GROUP = 20  # larger groups at one address (a hostel, a care home) are not households


def _shrink_u(counts: np.ndarray, pairs: int, prior: np.ndarray) -> NDArray[np.float64]:
    pseudo = np.clip(PRIOR_EVENTS / np.maximum(prior, 1e-12), 1e3, 1e7)
    shrunk: NDArray[np.float64] = (counts + pseudo * prior) / (pairs + pseudo)
    return shrunk


def _primary_names(index: MatchIndex) -> tuple[np.ndarray, np.ndarray]:
    """(given id, family id) of each row's first name (NONE when the record has none)."""
    starts, ends = index.name_start[:-1], index.name_start[1:]
    has = ends > starts
    given = np.full(len(index), NONE, dtype=np.int64)
    family = np.full(len(index), NONE, dtype=np.int64)
    given[has] = index.name_given[starts[has]]
    family[has] = index.name_family[starts[has]]
    return given, family


def query_sample(records: Sequence[PersonRecord], pools: Pools, rng: random.Random,
                 size: int, today: dt.date | None = None,
                 rows_of: Sequence[int] | None = None
                 ) -> tuple[list[int], list[SubjectQuery]]:
    """Sampled records (their index rows: ``rows_of[i]`` for records[i], else i) and a
    corrupted copy of each, as an analyst would type them: both m and u are measured on
    queries of this form (an initial, a missing postcode... are as common in the u pairs
    as in the m pairs)."""
    chosen = [i for i in rng.sample(range(len(records)), min(len(records), size))
              if records[i].names or records[i].identifiers]
    rows = [rows_of[i] for i in chosen] if rows_of is not None else chosen
    return rows, [corrupt(View.of(records[i]), pools, rng, today=today).subject()
                  for i in chosen]


def estimate_u(index: MatchIndex, model: MatchModel, rows: list[int],
               queries: list[SubjectQuery], rng: np.random.Generator) -> dict[str, Any]:
    """Replace the model's u by how queries compare with other people's records: each
    query against random rows other than its own (names, places, sex, through the scorer
    itself), and the queries' dates of birth against many more (vectorised)."""
    n = len(index)
    counts = {f: np.zeros(FIELDS[f]) for f in ("given", "family", "place", "sex", "dob")}
    per_query = int(min(max(PAIRS // max(len(queries), 1), 20), n - 1))
    for row, query in zip(rows, queries, strict=True):
        others = rng.choice(n - 1, size=per_query, replace=False)
        others[others >= row] += 1
        s = score(index, query, np.sort(others), model)
        for field_name, levels in (("given", s.given), ("family", s.family),
                                   ("place", s.place), ("sex", s.sex)):
            counts[field_name] += np.bincount(levels, minlength=FIELDS[field_name])
    q_dobs = np.array([dob_int(q.date_of_birth) for q in queries], dtype=np.int64)
    q_rows = np.array(rows, dtype=np.int64)
    known = q_dobs != 0
    q_dobs, q_rows = q_dobs[known], q_rows[known]
    if len(q_dobs):
        per_date = int(min(max(DATE_PAIRS // len(q_dobs), 1), n - 1))
        for at in range(0, len(q_dobs), max(1, CHUNK // per_date)):
            qd = np.repeat(q_dobs[at:at + max(1, CHUNK // per_date)], per_date)
            qr = np.repeat(q_rows[at:at + max(1, CHUNK // per_date)], per_date)
            others = rng.integers(0, n - 1, size=len(qd))
            others[others >= qr] += 1
            counts["dob"] += np.bincount(dob_levels(qd, index.dob[others]),
                                         minlength=Dob.SIZE)
    used: dict[str, Any] = {}
    for field_name, c in counts.items():
        c = c.copy()
        c[MISSING[field_name]] = 0
        prior = prior_table(field_name, 1)
        u = _shrink_u(c, int(c.sum()), prior)
        u[MISSING[field_name]] = 1.0
        if field_name == "sex":
            u[Agree.DISAGREE] = 1.0 - u[Agree.AGREE]
        model.u[field_name] = u
        used[field_name] = int(c.sum())
    return used


def _groups(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sharing (first, second) ids, over every column of ``second``: (row order by
    group, group start offsets); each row once per group."""
    n, k = second.shape
    rows = np.repeat(np.arange(n), k)
    a = np.repeat(first, k)
    b = second.reshape(-1)
    keep = (a != NONE) & (b != NONE)
    rows, keys = rows[keep], pair_key(a[keep], b[keep])
    order = np.lexsort((rows, keys))
    rows, keys = rows[order], keys[order]
    first_of = np.r_[True, (keys[1:] != keys[:-1]) | (rows[1:] != rows[:-1])] if len(
        keys) else np.zeros(0, dtype=bool)
    rows, keys = rows[first_of], keys[first_of]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(
        0, dtype=np.int64)
    return rows, np.r_[starts, len(keys)]


def _pairs_within(sizes: np.ndarray) -> float:
    return float((sizes * (sizes - 1) / 2).sum())


def _value_pairs(ids: np.ndarray) -> float:
    ids = ids[ids != NONE]
    if not len(ids):
        return 0.0
    return _pairs_within(np.unique(ids, return_counts=True)[1].astype(np.float64))


def _distinct_per_row(values: np.ndarray) -> np.ndarray:
    """Each row's distinct values (NONE left out), all rows' in one array: a record counts
    once per place value it has. (Sorting each row's few columns, not np.unique over
    (row, value) pairs, whose row-wise sort took a minute at 10,000,000 records.)"""
    ordered = np.sort(values, axis=1)
    keep = ordered != NONE
    keep[:, 1:] &= ordered[:, 1:] != ordered[:, :-1]
    distinct: np.ndarray = ordered[keep]
    return distinct


def _ratio(index: MatchIndex, family: np.ndarray, places: np.ndarray
           ) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(observed / expected pairs sharing a family name and a place, the excess pairs as a
    share of all pairs, the groups)."""
    n = len(index)
    rows, bounds = _groups(family, places)
    sizes = np.diff(bounds).astype(np.float64)
    observed = _pairs_within(sizes)
    total = n * (n - 1) / 2
    expected = (_value_pairs(family) * _value_pairs(_distinct_per_row(places)) / total
                ) if total else 0.0
    rate = max(0.0, observed - expected) / total if total else 0.0
    return max(1.0, (observed + 1.0) / (expected + 1.0)), rate, rows, bounds


_LIKELY_SAME_GIVEN = (Given.EXACT, Given.NICKNAME, Given.FUZZY, Given.INITIAL)
_LIKELY_SAME_DOB = (Dob.EXACT, Dob.SWAPPED, Dob.ONE_OFF, Dob.ONE_PART, Dob.YEAR_ONLY,
                    Dob.MISSING)


def estimate_household(index: MatchIndex, model: MatchModel) -> dict[str, Any]:
    """The household ratios and the (given, dob) table among household members, compared
    as a query is scored: one member's given name may be another's second forename (a
    parent's name given as a child's middle name)."""
    given, family = _primary_names(index)
    starts, ends = index.name_start[:-1], index.name_start[1:]
    other = np.where(ends > starts, index.name_other[np.minimum(starts, len(index.name_other)
                                                                 - 1)], NONE)
    premises_ratio, premises_rate, rows, bounds = _ratio(index, family, index.addr_key)
    postcode_ratio, postcode_rate, pc_rows, pc_bounds = _ratio(index, family, index.postcode)
    strings = index.strings.strings
    table = np.zeros((Given.SIZE, Dob.SIZE))
    seen: set[tuple[int, int]] = set()
    housed: set[int] = set()  # records that live with another (in groups of 2 to MAX_GROUP)
    twins: set[int] = set()  # and of those, the ones with a twin among them
    for members, edges in ((rows, bounds), (pc_rows, pc_bounds)):
        for a, b in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
            if not 2 <= b - a <= MAX_GROUP:
                continue
            group = members[a:b].tolist()
            for x in range(len(group)):
                for y in range(x + 1, len(group)):
                    p, q = group[x], group[y]
                    if (p, q) in seen:
                        continue
                    seen.add((p, q))
                    if given[p] == NONE or given[q] == NONE:
                        continue
                    g = compare_given(strings[given[p]], strings[given[q]])
                    if g == Given.DIFFERENT and (other[p] == given[q] or other[q] == given[p]):
                        g = Given.OTHER_FORENAME
                    d = (dob_level(_date(index.dob[p]), int(index.dob[q]))
                         if index.dob[p] and index.dob[q] else Dob.MISSING)
                    if g in _LIKELY_SAME_GIVEN and d in _LIKELY_SAME_DOB:
                        continue  # two records of one person, not a household
                    housed.update((p, q))
                    if d == Dob.EXACT:
                        twins.update((p, q))
                    if d != Dob.MISSING:
                        table[g, d] += 1
    pairs = int(table.sum())
    prior = household_prior(model.u["given"])
    core = prior.copy()
    core[Given.MISSING, :] = 0
    core[:, Dob.MISSING] = 0
    core /= core.sum()
    posterior = (table + HOUSEHOLD_PSEUDO * core) / (pairs + HOUSEHOLD_PSEUDO)
    model.household = Household(premises_ratio, postcode_ratio, with_margins(posterior), pairs,
                                premises_rate, postcode_rate)
    # a household member asked about is a twin of someone held this often (per member, not
    # per pair: in a family of four with twins one pair in six is twins, half the members)
    share = (len(twins) + TWIN_PSEUDO * TWIN_SHARE) / (len(housed) + TWIN_PSEUDO)
    return {"twin_share": round(share, 4), "premises_ratio": round(premises_ratio, 2),
            "postcode_ratio": round(postcode_ratio, 2), "household_pairs": pairs,
            "premises_rate": float(f"{premises_rate:.3g}"),
            "postcode_rate": float(f"{postcode_rate:.3g}")}


def _date(value: int) -> dt.date:
    return dt.date(value // 10000, value // 100 % 100, value % 100)


def estimate_m(index: MatchIndex, model: MatchModel, rows: list[int],
               queries: list[SubjectQuery]) -> dict[str, Any]:
    """Replace the model's m by how each sampled record compares with its corrupted copy."""
    counts = {f: np.zeros(FIELDS[f]) for f in ("given", "family", "dob", "place", "sex")}
    for row, query in zip(rows, queries, strict=True):
        s = score(index, query, np.array([row]), model)
        for field_name, levels in (("given", s.given), ("family", s.family), ("dob", s.dob),
                                   ("place", s.place), ("sex", s.sex)):
            counts[field_name][int(levels[0])] += 1
    used = {}
    for field_name, c in counts.items():
        c = c.copy()
        c[MISSING[field_name]] = 0
        prior = prior_table(field_name, 0)
        prior[MISSING[field_name]] = 0
        prior = prior / prior.sum()
        m = (c + M_PSEUDO * prior) / (c.sum() + M_PSEUDO)
        m[MISSING[field_name]] = 1.0
        model.m[field_name] = np.maximum(m, 1e-6)
        used[field_name] = int(c.sum())
    return used
