"""Scoring candidate rows: the sum of Fellegi-Sunter weights over every field, for all
candidates of one subject at once, with the household correction for namesakes who share
a place (see `MatchModel` and `Household`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from mash.matching.address import Address as ParsedAddress
from mash.matching.blocking import (
    first_given,
    original_variants,
    query_name_variants,
    subject_addresses,
)
from mash.matching.compare import (
    PLACE_TABLE,
    Address,
    Agree,
    Dob,
    Family,
    Given,
    Place,
    Postcode,
    compare_addresses,
    compare_dob,
    compare_exact,
    compare_postcodes,
    family_levels,
    given_levels,
    place_levels,
    streets_alike_many,
)
from mash.matching.index import NONE, SEX_CODES, MatchIndex, pair_key
from mash.matching.model import SWAPPED_NAME_PENALTY, TF_FLOOR, MatchModel
from mash.normalise import postcode_district, postcode_sector
from mash.subject import SubjectQuery

# Up to this many candidate rows, scoring loops in plain Python; above it, numpy (its cost
# per call is outweighed only by larger sets: measured at 100,000 and 1,000,000 records)
FEW_ROWS = 64
# Family-name levels at which two people share a family name, and places they share:
# together, a household more often than a coincidence
SHARED_FAMILY = Family.FUZZY  # EXACT, PART or FUZZY: the levels up to it
SHARED_PLACE = Place.STREET  # PREMISES_POSTCODE, PREMISES, POSTCODE or STREET
HOUSEHOLD_ELSEWHERE = 0.25
# A row is dropped under a floor only when its bound is below it by more than this: the
# bound and the total add the same weights in another order (rounding differs in the last
# bits), and a row exactly at the floor must be kept.
BOUND_SLACK = 1e-6


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
    address: np.ndarray
    place: np.ndarray
    sex: np.ndarray
    identifiers: dict[str, np.ndarray] = field(default_factory=dict)
    household: np.ndarray | None = None  # bits taken off as a likely household member
    examined: int = -1  # rows blocked and looked at (more than ``rows`` under a floor)

    def __post_init__(self) -> None:
        if self.examined < 0:
            self.examined = len(self.rows)

    def names_agree(self) -> np.ndarray:
        """Both names agree at least phonetically (or by nickname, initial, second forename)."""
        return (self.given <= Given.INITIAL) & (self.family <= Family.PHONETIC)

    def any_identifier(self, level: int) -> np.ndarray:
        out = np.zeros(len(self.rows), dtype=bool)
        for levels in self.identifiers.values():
            out |= levels == level
        return out


def _levels(index: MatchIndex, model: MatchModel, query: str, ids: list[int],
            family: bool) -> tuple[np.ndarray, np.ndarray]:
    """Level and weight of each distinct record name (string id) against one query name."""
    exact, field_name = (Family.EXACT, "family") if family else (Given.EXACT, "given")
    at = np.asarray(ids, dtype=np.int64)
    levels = (family_levels(index.features, query, at) if family else
              given_levels(index.features, query, at, counts=index.given_count))
    weights = model.weights[field_name][levels]
    for i in np.nonzero(levels == exact)[0].tolist():
        # how common the string is as any name: a surname typed as a given name (swapped
        # names) is as common as the surname
        sid = ids[i]
        weights[i] = model.exact_name(field_name, int(index.given_count[sid])
                                      + int(index.family_count[sid]), index.name_rows)
    return levels, weights


def _by_id(ids: list[int], compared: tuple[np.ndarray, np.ndarray]
           ) -> dict[int, tuple[int, float]]:
    levels, weights = compared
    return dict(zip(ids, zip(levels.tolist(), weights.tolist(), strict=True), strict=True))


Best = tuple[list[float], list[float], list[int], list[int], list[bool]]


def _best_names_few(index: MatchIndex, model: MatchModel, subject: SubjectQuery,
                    rows: np.ndarray) -> Best:
    """`best_names` in plain Python, for the tens of rows most searches examine: numpy's
    cost per call would outweigh the work (the string comparisons themselves are cached)."""
    n = len(rows)
    best_w, best_gw, best_g = [0.0] * n, [0.0] * n, [Given.MISSING] * n
    best_f, best_s = [Family.MISSING] * n, [False] * n
    variants = query_name_variants(subject)
    if not variants or not n:
        return best_w, best_gw, best_g, best_f, best_s
    starts = index.name_start[rows].tolist()
    ends = index.name_start[rows + 1].tolist()
    flat = [j for a, b in zip(starts, ends, strict=True) for j in range(a, b)]
    if not flat:
        return best_w, best_gw, best_g, best_f, best_s
    gids = index.name_given[flat].tolist()
    fids = index.name_family[flat].tolist()
    oids = index.name_other[flat].tolist()
    weights = model.weights["given"]
    other_gain = float(weights[Given.OTHER_FORENAME] - weights[Given.DIFFERENT])
    originals = len(original_variants(subject))
    g_ids, f_ids = list(set(gids)), list(set(fids))
    compared = []
    for v, variant in enumerate(variants):
        q_given = first_given(variant)
        compared.append((_by_id(g_ids, _levels(index, model, q_given, g_ids, family=False)),
                         _by_id(f_ids, _levels(index, model, variant.family, f_ids,
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
                # the query's given name is the record's second forename
                if other_id != NONE and o_id == other_id and g == Given.DIFFERENT:
                    gw, g = gw + other_gain, Given.OTHER_FORENAME
                w = gw + fw
                if swapped:
                    w = w - SWAPPED_NAME_PENALTY
                if w > top:
                    top = best_w[i] = w
                    best_gw[i], best_g[i], best_f[i], best_s[i] = gw, g, f, swapped
        first += b - a
    return best_w, best_gw, best_g, best_f, best_s


def _name_rows(index: MatchIndex, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner position in rows, name row) for every name of every candidate row."""
    starts = index.name_start[rows]
    counts = (index.name_start[rows + 1] - starts).astype(np.int64)
    owner = np.repeat(np.arange(len(rows)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, np.repeat(starts, counts) + offsets


def _best_names_many(index: MatchIndex, model: MatchModel, subject: SubjectQuery,
                     rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """`best_names` with numpy, for the hundreds of rows a search of a large index can
    examine."""
    n = len(rows)
    best_w = np.zeros(n, dtype=np.float64)
    best_gw = np.zeros(n, dtype=np.float64)
    best_g = np.full(n, Given.MISSING, dtype=np.int8)
    best_f = np.full(n, Family.MISSING, dtype=np.int8)
    best_s = np.zeros(n, dtype=bool)
    variants = query_name_variants(subject)
    if not variants or not n:
        return best_w, best_gw, best_g, best_f, best_s
    owner, name_rows = _name_rows(index, rows)
    if not len(name_rows):
        return best_w, best_gw, best_g, best_f, best_s
    oids = index.name_other[name_rows]
    uniq_g, inv_g = np.unique(index.name_given[name_rows], return_inverse=True)
    uniq_f, inv_f = np.unique(index.name_family[name_rows], return_inverse=True)
    g_ids, f_ids = uniq_g.tolist(), uniq_f.tolist()
    w_all = np.full(len(name_rows), -np.inf)
    gw_all = np.zeros(len(name_rows))
    g_all = np.full(len(name_rows), Given.MISSING, dtype=np.int8)
    f_all = np.full(len(name_rows), Family.MISSING, dtype=np.int8)
    s_all = np.zeros(len(name_rows), dtype=bool)
    originals = len(original_variants(subject))
    weights = model.weights["given"]
    for v, variant in enumerate(variants):
        q_given = first_given(variant)
        gl, gwv = _levels(index, model, q_given, g_ids, family=False)
        fl, fwv = _levels(index, model, variant.family, f_ids, family=True)
        g, f = gl[inv_g].astype(np.int8), fl[inv_f].astype(np.int8)
        gw, fw = gwv[inv_g], fwv[inv_f]
        other_id = index.strings.get(q_given)
        if other_id != NONE:  # the query's given name is the record's second forename
            other = (oids == other_id) & (g == Given.DIFFERENT)
            if other.any():
                gw = gw + np.where(other, weights[Given.OTHER_FORENAME]
                                   - weights[Given.DIFFERENT], 0.0)
                g = np.where(other, Given.OTHER_FORENAME, g).astype(np.int8)
        w = gw + fw
        if v >= originals:
            w = w - SWAPPED_NAME_PENALTY
        better = w > w_all
        w_all = np.where(better, w, w_all)
        gw_all = np.where(better, gw, gw_all)
        g_all = np.where(better, g, g_all)
        f_all = np.where(better, f, f_all)
        s_all = np.where(better, v >= originals, s_all)
    order = np.lexsort((-w_all, owner))
    first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
    who = owner[first]
    best_w[who], best_gw[who], best_g[who], best_f[who], best_s[who] = (
        w_all[first], gw_all[first], g_all[first], f_all[first], s_all[first])
    return best_w, best_gw, best_g, best_f, best_s


def best_names(index: MatchIndex, model: MatchModel, subject: SubjectQuery,
               rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per candidate row: the best agreement over every (query name or swapped variant,
    record name) pair, as arrays of (weight, its given-name part, given level, family
    level, swapped). Ties keep the first variant and the first record name, in order. Two
    implementations of one rule, chosen by size (tests/test_matching_score.py proves they
    agree)."""
    if len(rows) > FEW_ROWS:
        return _best_names_many(index, model, subject, rows)
    w, gw, g, f, s = _best_names_few(index, model, subject, rows)
    return (np.array(w, dtype=np.float64), np.array(gw, dtype=np.float64),
            np.array(g, dtype=np.int8), np.array(f, dtype=np.int8), np.array(s, dtype=bool))


def _query_addresses(index: MatchIndex, addresses: list[ParsedAddress], rows: np.ndarray
                     ) -> list[tuple[int, int, list[int], list[int]]]:
    """Each query address as ids: (number or name, flat, the candidate rows' street ids
    that are alike its street, its locality words found in the index)."""
    if not addresses:
        return []
    get = index.strings.get
    street_ids = np.unique(take(index.addr_street, rows))
    street_ids = street_ids[street_ids != NONE]
    out = []
    for a in addresses:
        alike_mask = np.zeros(len(street_ids), dtype=bool)
        for option in a.streets:
            alike_mask |= streets_alike_many(index.features, option, street_ids)
        alike = street_ids[alike_mask].tolist()
        out.append((get(a.number or a.name) if (a.number or a.name) else NONE,
                    get(a.flat) if a.flat else NONE, alike, _locality_ids(index, a)))
    return out


def _place_u(index: MatchIndex, model: MatchModel, rows: np.ndarray, place: np.ndarray, *,
             address: np.ndarray, words: list[int]) -> NDArray[np.float64]:
    """u of each row's place level: the share of the agency's records at that dwelling (at
    that postcode) or postcode for the levels that name one; for a row at the area level
    that shares a word of the locality (another street; the postcode district in common or
    not), the share of the records with the rarest word it shares (a village, a suburb, an
    estate's name is far more evidence than a county or a state); else the level's u.
    ``words``: the ids of the query's locality words (`_locality_ids`). (Where the district
    is shared too, its own frequency, which the index does not count, may be the rarer:
    such a row is then weighed by the word alone.)"""
    u: NDArray[np.float64] = model.u["place"][place].copy()
    total = index.population
    area = (place == Place.AREA) & (address == Address.LOCALITY)
    if words and area.any():
        locality = take(index.addr_locality, rows[area])
        rarest = np.full(len(locality), np.iinfo(np.int64).max, dtype=np.int64)
        for word in words:
            shared = (locality == word).any(axis=(1, 2))
            rarest[shared] = np.minimum(rarest[shared], int(index.locality_count[word]))
        u[area] = model.tf_u("place", Place.AREA, np.maximum(rarest, 1), total)
    for level in (Place.PREMISES_POSTCODE, Place.PREMISES, Place.POSTCODE):
        at = place == level
        if not at.any():
            continue
        r = rows[at]
        if level == Place.PREMISES_POSTCODE:
            keys = take(index.addr_key, r)[:, :, None].repeat(index.postcode.shape[1], axis=2)
            pcs = take(index.postcode, r)[:, None, :].repeat(index.addr_key.shape[1], axis=1)
            counts = index.premises_frequency(pair_key(keys, pcs).reshape(-1)).reshape(
                len(r), -1) * ((keys >= 0) & (pcs >= 0)).reshape(len(r), -1)
        elif level == Place.PREMISES:
            keys = take(index.addr_key, r)
            counts = np.where(keys >= 0, index.address_count[np.maximum(keys, 0)], 0)
        else:
            pcs = take(index.postcode, r)
            counts = np.where(pcs >= 0, index.postcode_count[np.maximum(pcs, 0)], 0)
        u[at] = model.tf_u("place", level, np.maximum(counts.max(axis=1), 1), total)
    return u


def household_like(family: np.ndarray, place: np.ndarray) -> NDArray[np.bool_]:
    """Candidates who share the query's family name and place, or its family name where
    one side gives no place: the only ones a household member of theirs (a twin, a
    sibling, a parent) can be mistaken for."""
    out: NDArray[np.bool_] = (family <= SHARED_FAMILY) & (
        (place <= SHARED_PLACE) | (place == Place.MISSING))
    return out


def take(column: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The column's values at these rows (np.take: for a column of several values a row,
    a few times faster than fancy indexing)."""
    return np.take(column, rows, axis=0)


def _locality_ids(index: MatchIndex, address: ParsedAddress) -> list[int]:
    """The ids of an address's locality words that the index holds (no other can agree)."""
    get = index.strings.get
    return [w for w in (get(t) for t in address.locality) if w != NONE]


def rarest_locality_u(index: MatchIndex, model: MatchModel, words: list[int]) -> float:
    """The least u a row sharing one of the subject's locality ``words`` (their ids in the
    index) can have (the rarest word's; the level's own u if there are none, or where that
    is less): `place_bounds` at the area level for this subject."""
    average = float(model.u["place"][Place.AREA])
    if not words:
        return average
    rarest = min(int(index.locality_count[w]) for w in words)
    return min(average, float(model.tf_u("place", Place.AREA, np.array([max(rarest, 1)]),
                                         index.population)[0]))


def place_bounds(model: MatchModel, area_u: float | None = None) -> NDArray[np.float64]:
    """By postcode level: the most weight any row's place can add, whatever its address
    and however rare its dwelling or postcode (a term-frequency u is never below
    TF_FLOOR), and with a locality word in common whose u is at least ``area_u`` (the
    subject's `rarest_locality_u`; by default the level's own u). Index `Postcode.SIZE`
    holds the bound over every postcode level."""
    u = model.u["place"].copy()
    u[[Place.PREMISES_POSTCODE, Place.PREMISES, Place.POSTCODE]] = TF_FLOOR
    if area_u is not None:
        u[Place.AREA] = min(u[Place.AREA], area_u)
    weight = np.log2(model.m["place"] / u)
    weight[Place.MISSING] = 0.0
    by_postcode = weight[PLACE_TABLE].max(axis=1)
    return np.append(by_postcode, by_postcode.max())


def names_bound(index: MatchIndex, model: MatchModel, subject: SubjectQuery,
                rows: np.ndarray) -> NDArray[np.float64]:
    """Per row, at least the names weight `best_names` gives it, found without comparing a
    string: a record's given name agrees exactly only when it is the query's own string, and
    its family name only when it is the query's or has several words (another spacing of
    it); any other name can at best reach the strongest level short of exact."""
    n = len(rows)
    variants = query_name_variants(subject)
    out = np.zeros(n, dtype=np.float64)
    if not variants or not n:
        return out
    owner, name_rows = _name_rows(index, rows)
    if not len(name_rows):
        return out
    gids, fids = take(index.name_given, name_rows), take(index.name_family, name_rows)
    w_given, w_family = model.weights["given"], model.weights["family"]
    given_other = float(np.delete(w_given, Given.EXACT).max())
    family_other = float(np.delete(w_family, Family.EXACT).max())
    features = index.features
    spaced = ~features.plain[features.slots(fids)] & (fids != NONE)
    family_any = np.full(len(name_rows), family_other)
    if spaced.any():  # such a name's exact weight is its own string's
        sids = fids[spaced]
        counts = take(index.given_count, sids).astype(np.int64) + take(index.family_count,
                                                                        sids)
        u = model.exact_u("family", counts, index.name_rows)
        family_any[spaced] = np.maximum(family_other,
                                        np.log2(model.m["family"][Family.EXACT] / u))
    best = np.full(len(name_rows), -np.inf)
    originals = len(original_variants(subject))
    get = index.strings.get
    for v, variant in enumerate(variants):
        gid, fid = get(first_given(variant)), get(variant.family.replace(" ", ""))
        gw = np.full(len(name_rows), given_other)
        if gid != NONE:
            gw[gids == gid] = max(given_other, model.exact_name(
                "given", int(index.given_count[gid]) + int(index.family_count[gid]),
                index.name_rows))
        fw = family_any.copy()
        if fid != NONE:
            exact = model.exact_name("family", int(index.given_count[fid])
                                     + int(index.family_count[fid]), index.name_rows)
            same = fids == fid
            fw[same] = np.maximum(fw[same], exact)
        total = gw + fw - (SWAPPED_NAME_PENALTY if v >= originals else 0.0)
        np.maximum(best, total, out=best)
    starts = np.r_[0, np.nonzero(owner[1:] != owner[:-1])[0] + 1]
    out[owner[starts]] = np.maximum.reduceat(best, starts)
    return out


def names_ceiling(index: MatchIndex, model: MatchModel, subject: SubjectQuery) -> float:
    """The most weight the subject's names can give any row (`best_names`), the same for
    every row: `names_bound` without looking at the rows (an exact agreement at the query
    name's own frequency, or a family name of several words written with other spaces at
    its own; the strongest inexact level otherwise)."""
    variants = query_name_variants(subject)
    if not variants:
        return 0.0
    w_given, w_family = model.weights["given"], model.weights["family"]
    given_other = float(np.delete(w_given, Given.EXACT).max())
    family_other = float(np.delete(w_family, Family.EXACT).max())
    get = index.strings.get
    originals = len(original_variants(subject))
    best = -math.inf
    for v, variant in enumerate(variants):
        given, family = first_given(variant), variant.family.replace(" ", "")
        g = given_other
        gid = get(given)
        if gid != NONE:
            g = max(g, model.exact_name("given", int(index.given_count[gid])
                                        + int(index.family_count[gid]), index.name_rows))
        f = family_other
        counts = [int(index.given_count[fid]) + int(index.family_count[fid])
                  for fid in (get(family),) if fid != NONE]
        spaced = index.spaced_families.get(family) if family else None
        counts += [spaced] if spaced is not None else []
        if counts:
            f = max(f, model.exact_name("family", min(counts), index.name_rows))
        best = max(best, g + f - (SWAPPED_NAME_PENALTY if v >= originals else 0.0))
    # a row without names weighs 0 for them
    return max(best, 0.0)


class _Kept:
    """The per-row arrays of a score in progress, cut down together to the rows kept."""

    def __init__(self, **arrays: np.ndarray) -> None:
        self.arrays = arrays

    def keep(self, which: np.ndarray) -> None:
        if not which.all():
            self.arrays = {name: values[which] for name, values in self.arrays.items()}

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __setitem__(self, name: str, values: np.ndarray) -> None:
        self.arrays[name] = values


def score(index: MatchIndex, subject: SubjectQuery, rows: np.ndarray,
          model: MatchModel, *, floor: float | None = None) -> Scored:
    """Every row's weights and total.

    ``floor``: only rows that can reach it are wanted (`Matcher.rank` asks for those at the
    possible threshold). Of the hundreds or thousands of rows a large index blocks for a
    common name, most cannot, and they are dropped before the costly comparisons: first
    those whose date of birth, sex and identifiers, with the most their names could weigh
    (`names_bound`) and the most a place at their postcode level could (`place_bounds`),
    stay below it; then, with the names compared, those the place still could not lift.
    The household correction only takes weight off, so a dropped row's total could only be
    lower. The rows kept score exactly as without a floor; ``examined`` counts every row
    given."""
    examined = len(rows)
    w = model.weights
    dobs = take(index.dob, rows)
    dob = compare_dob(subject.date_of_birth, dobs)
    u_dob = model.u["dob"][dob].copy()
    exact = dob == Dob.EXACT
    if exact.any():
        u_dob[exact] = model.exact_u("dob", index.dob_frequency(dobs[exact]),
                                     index.population)
    w_dob = np.log2(model.m["dob"][dob] / u_dob)
    w_dob[dob == Dob.MISSING] = 0.0
    sex = compare_exact(SEX_CODES[subject.sex] if subject.sex else None,
                        take(index.sex, rows), 0)
    identifiers = {}
    for kind, value in subject.identifiers.items():
        column = index.identifiers.get(kind)
        if column is not None:
            identifiers[kind] = compare_exact(value.encode(), take(column, rows), b"")
    get = index.strings.get
    pcs = list(subject.postcodes)
    postcode = compare_postcodes(
        [p for p in (get(p) for p in pcs) if p != NONE] or ([-2] if pcs else []),
        [s for s in (get(postcode_sector(p)) for p in pcs) if s != NONE],
        [d for d in (get(postcode_district(p)) for p in pcs) if d != NONE],
        take(index.postcode, rows), take(index.sector, rows), take(index.district, rows))
    kept = _Kept(rows=rows, dob=dob, u_dob=u_dob, w_dob=w_dob, sex=sex, postcode=postcode,
                 **{f"id:{kind}": levels for kind, levels in identifiers.items()})
    addresses = subject_addresses(subject)
    # the ids of the subject's locality words, for the area level's u and its bound
    words = sorted({w for a in addresses for w in _locality_ids(index, a)})
    pruning = floor is not None and len(rows) > FEW_ROWS
    if pruning and floor is not None:
        bounds = place_bounds(model, area_u=rarest_locality_u(index, model, words))
        partial = w_dob + w["sex"][sex]
        for levels in identifiers.values():
            partial = partial + w["identifier"][levels]
        reach = partial + bounds[postcode]
        kept["reach"] = reach
        kept.keep(reach + names_ceiling(index, model, subject) >= floor - BOUND_SLACK)
        if len(kept["rows"]) > FEW_ROWS:
            kept.keep(kept["reach"] + names_bound(index, model, subject, kept["rows"])
                      >= floor - BOUND_SLACK)
    best_w, best_gw, best_g, best_f, best_s = best_names(index, model, subject, kept["rows"])
    kept.arrays.update(best_w=best_w, best_gw=best_gw, best_g=best_g, best_f=best_f,
                       best_s=best_s)
    if pruning and floor is not None:
        kept.keep(kept["reach"] + best_w >= floor - BOUND_SLACK)
    rows, postcode, dob, u_dob, sex = (kept["rows"], kept["postcode"], kept["dob"],
                                       kept["u_dob"], kept["sex"])
    best_w, best_gw, best_g, best_f, best_s = (kept["best_w"], kept["best_gw"], kept["best_g"],
                                               kept["best_f"], kept["best_s"])
    identifiers = {kind: kept[f"id:{kind}"] for kind in identifiers}
    n = len(rows)
    total = best_w + kept["w_dob"]

    queried = _query_addresses(index, addresses, rows)
    address = compare_addresses(queried, take(index.addr_number, rows),
                                take(index.addr_flat, rows), take(index.addr_street, rows),
                                take(index.addr_locality, rows))
    place = place_levels(postcode, address)
    u_place = _place_u(index, model, rows, place, address=address, words=words)
    w_place = np.log2(model.m["place"][place] / u_place)
    w_place[place == Place.MISSING] = 0.0
    total += w_place
    total += w["sex"][sex]
    for levels in identifiers.values():
        total += w["identifier"][levels]

    household = np.zeros(n)
    co = best_f <= SHARED_FAMILY
    if co.any() and model.household.premises_rate > 0:
        h = model.household
        where = place[co]
        # a household member's record names another place (an old address, a move) about
        # HOUSEHOLD_ELSEWHERE of the time; no place on one side says nothing either way
        rate = np.where(where == Place.POSTCODE, h.postcode_rate, h.premises_rate) * np.where(
            where <= SHARED_PLACE, 1.0,
            np.where(where == Place.MISSING, 1.0, HOUSEHOLD_ELSEWHERE))
        u_given = model.m["given"][best_g[co]] / np.exp2(best_gw[co])
        family_w = best_w[co] - best_gw[co] + np.where(best_s[co], SWAPPED_NAME_PENALTY, 0.0)
        u_family = model.m["family"][best_f[co]] / np.exp2(family_w)
        household[co] = h.correction(rate, u_family, u_place[co], best_g[co], dob[co],
                                     u_given, u_dob[co])
    if model.household.shift > 0:
        household[household_like(best_f, place)] += model.household.shift
    total -= household
    return Scored(rows, total, best_g, best_f, best_s, dob, postcode, address, place, sex,
                  identifiers, household, examined)


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
_ADDRESS_WHY = {Address.PREMISES: "address", Address.STREET: "address:street",
                Address.LOCALITY: "address:locality"}


def matched_on(scored: Scored, i: int) -> tuple[str, ...]:
    """What agreed for the i-th scored row, in words an analyst can check."""
    why = [kind for kind, levels in scored.identifiers.items() if levels[i] == Agree.AGREE]
    for table, level in ((_GIVEN_WHY, scored.given[i]), (_FAMILY_WHY, scored.family[i])):
        if int(level) in table:
            why.append(table[int(level)])
    if scored.swapped[i]:
        why.append("names_swapped")
    for table, level in ((_DOB_WHY, scored.dob[i]), (_POSTCODE_WHY, scored.postcode[i]),
                         (_ADDRESS_WHY, scored.address[i])):
        if int(level) in table:
            why.append(table[int(level)])
    if scored.sex[i] == Agree.AGREE:
        why.append("sex")
    return tuple(why)
