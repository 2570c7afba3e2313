"""One agency's match model: Fellegi-Sunter m and u by comparison level, how households
share names and places in its records, and its thresholds.

Every index gets its own model (mash.matching.calibration builds it, persist saves it with
the index): u from random pairs of the agency's own records, term frequencies from its own
values, m from a broad corruption model run over its own records, thresholds from strangers
and household members synthesised from its own distributions. Nothing here is fitted to a
generator; the tables below are priors, used where the records are too few to say.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mash.matching.compare import Agree, Dob, Family, Given, Place

FIELDS: dict[str, int] = {"given": Given.SIZE, "family": Family.SIZE, "dob": Dob.SIZE,
                          "place": Place.SIZE, "sex": Agree.SIZE, "identifier": Agree.SIZE}
MISSING = {"given": Given.MISSING, "family": Family.MISSING, "dob": Dob.MISSING,
           "place": Place.MISSING, "sex": Agree.MISSING, "identifier": Agree.MISSING}
# Levels whose u is a term frequency: the share of the agency's records with that value.
EXACT = {"given": Given.EXACT, "family": Family.EXACT, "dob": Dob.EXACT}

# Priors: (m, u) by level for a UK population, used to smooth what the records estimate
# (a level the records show rarely keeps close to its prior). The m priors are deliberately
# broad (a value replaced, mistyped or missing is common between two agencies' records of
# one person); u priors are chance agreement between two different people.
PRIOR: dict[str, dict[int, tuple[float, float]]] = {
    "given": {
        Given.EXACT: (0.80, 0.01), Given.NICKNAME: (0.05, 0.003), Given.FUZZY: (0.05, 0.004),
        Given.PHONETIC: (0.01, 0.006), Given.OTHER_FORENAME: (0.015, 0.003),
        Given.INITIAL: (0.015, 0.02), Given.DIFFERENT: (0.06, 0.95)},
    "family": {
        Family.EXACT: (0.85, 0.005), Family.PART: (0.02, 0.001), Family.FUZZY: (0.06, 0.002),
        Family.PHONETIC: (0.01, 0.006), Family.DIFFERENT: (0.05, 0.98)},
    "dob": {
        Dob.EXACT: (0.88, 4e-05), Dob.SWAPPED: (0.015, 1e-05), Dob.ONE_PART: (0.02, 0.004),
        Dob.ONE_OFF: (0.03, 0.0002), Dob.YEAR_ONLY: (0.01, 0.0006),
        Dob.DIFFERENT: (0.04, 0.995)},
    "place": {
        Place.PREMISES_POSTCODE: (0.55, 2e-05), Place.PREMISES: (0.08, 2e-05),
        Place.POSTCODE: (0.08, 0.0005), Place.STREET: (0.03, 0.0005),
        Place.SECTOR: (0.02, 0.004), Place.AREA: (0.04, 0.03), Place.DIFFERENT: (0.20, 0.96)},
    "sex": {Agree.AGREE: (0.98, 0.5), Agree.DISAGREE: (0.02, 0.5)},
    "identifier": {Agree.AGREE: (0.99, 1e-9), Agree.DISAGREE: (0.001, 1.0)},
}
SWAPPED_NAME_PENALTY = 1.5  # given and family names recorded the wrong way round
TF_FLOOR = 1e-7  # the smallest u a rare value may have
MIN_GAP = 3.0  # the match threshold is at least this far above the possible one


def prior_table(field_name: str, which: int) -> np.ndarray:
    """m (which=0) or u (which=1) priors by level; MISSING is 1 (it weighs nothing)."""
    out = np.ones(FIELDS[field_name], dtype=np.float64)
    for level, pair in PRIOR[field_name].items():
        out[level] = pair[which]
    return out


@dataclass(frozen=True)
class Thresholds:
    """Total weight at or above which a candidate is a match / a possible match."""

    match: float = 24.0
    possible: float = 20.0


@dataclass
class Household:
    """Two people who share a family name and a place are mostly one household, not a
    coincidence: a twin, a sibling, a parent. ``ratio``: how much more often the agency's
    records share (family name, dwelling) or (family name, postcode) than independence
    would give (1 when its records show no households). ``given_dob``: how household
    members compare on (given name level, date of birth level), among themselves."""

    premises_ratio: float = 1.0
    postcode_ratio: float = 1.0
    given_dob: np.ndarray = field(default_factory=lambda: household_prior(prior_table(
        "given", 1)))
    pairs: int = 0  # household pairs seen in the records
    # the share of all pairs of records that are namesakes sharing a dwelling / a postcode
    # beyond what chance gives: how often a person other than the one asked about lives
    # with them, whatever their name (0 when the records show no households)
    premises_rate: float = 0.0
    postcode_rate: float = 0.0
    # bits taken off every candidate who shares the query's family name and place (see
    # mash.matching.score.household_like), set by calibration so that such a candidate
    # needs more evidence than one who does not (0: none, as when the records show no
    # households): the household explanation can only hold for candidates of that kind
    shift: float = 0.0

    def correction(self, rate: np.ndarray, u_family: np.ndarray, u_place: np.ndarray,
                   given: np.ndarray, dob: np.ndarray, u_given: np.ndarray,
                   u_dob: np.ndarray) -> NDArray[np.float64]:
        """Bits to take off a namesake who shares a place with the record: the non-match
        likelihood is chance (u_family x u_place x u_given x u_dob) plus a household member
        (rate x how household members compare on given name and date of birth); this is
        log2 of the second term over the first, plus one. A rare family name and a single
        dwelling make chance unlikely, so a household explains them all the more."""
        chance = np.maximum(u_family * u_place * u_given * u_dob, 1e-300)
        bits: NDArray[np.float64] = np.log2(1.0 + rate * self.given_dob[given, dob] / chance)
        return bits


def household_prior(u_given: np.ndarray) -> np.ndarray:
    """P(given level, dob level) between two members of one household, before the records
    say: a twin shares the date of birth (about 2% of household pairs) but never the given
    name; a parent and child sometimes share the given name, never the date; otherwise
    given names compare as between strangers. MISSING rows and columns hold the margins."""
    dob = np.zeros(Dob.SIZE)
    dob[[Dob.EXACT, Dob.SWAPPED, Dob.ONE_PART, Dob.ONE_OFF, Dob.YEAR_ONLY]] = [
        0.02, 0.0002, 0.01, 0.003, 0.002]
    dob[Dob.DIFFERENT] = 1 - dob.sum()
    given = u_given.copy()
    given[Given.MISSING] = 0
    twin = given.copy()
    twin[[Given.EXACT, Given.NICKNAME]] = 1e-6  # no twins share a given name
    other = given.copy()
    other[Given.EXACT] = 0.005  # a parent and child of one name (Jr and Sr)
    table = np.zeros((Given.SIZE, Dob.SIZE))
    for d in range(Dob.SIZE):
        g = twin if d in (Dob.EXACT, Dob.SWAPPED, Dob.ONE_OFF) else other
        table[:, d] = g / g.sum() * dob[d]
    return with_margins(table)


def with_margins(table: np.ndarray) -> np.ndarray:
    """A joint (given, dob) table with its MISSING row and column set to the margins."""
    out = table.copy()
    out[Given.MISSING, :] = 0
    out[:, Dob.MISSING] = 0
    out /= out.sum()
    out[Given.MISSING, :] = out.sum(axis=0)
    out[:, Dob.MISSING] = out.sum(axis=1)
    out[Given.MISSING, Dob.MISSING] = 1.0
    return out


def frequency_u(count: np.ndarray | int, total: int, average: float) -> NDArray[np.float64]:
    """u for agreeing on a value that ``count`` of ``total`` records hold, one of them the
    candidate itself: the chance that a *different* record holds it is (count - 1) of the
    other total - 1. The candidate's own copy says nothing about chance (counting it made
    every rare value look common in a small index), and one pseudo-copy at the level's
    ``average`` u keeps a value no other record holds from scoring without bound."""
    others = np.maximum(np.asarray(count, dtype=np.float64) - 1.0, 0.0)
    prior = 1.0 / max(average, TF_FLOOR)
    u: NDArray[np.float64] = (others + 1.0) / (max(total - 1, 0) + prior)
    return np.maximum(u, TF_FLOOR)


@dataclass
class MatchModel:
    m: dict[str, np.ndarray]
    u: dict[str, np.ndarray]
    thresholds: Thresholds = field(default_factory=Thresholds)
    household: Household = field(default_factory=Household)
    records: int = 0
    # what was estimated and from how much: pairs, simulated queries, estimated rates
    provenance: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def prior(cls) -> MatchModel:
        """The priors alone (before an index has calibrated them)."""
        return cls({f: prior_table(f, 0) for f in FIELDS}, {f: prior_table(f, 1) for f in FIELDS},
                   provenance={"source": "priors"})

    @functools.cached_property
    def weights(self) -> dict[str, np.ndarray]:
        """log2(m/u) by level for every field; MISSING weighs 0."""
        out = {}
        for f in FIELDS:
            w = np.log2(self.m[f] / self.u[f])
            w[MISSING[f]] = 0.0
            out[f] = w
        return out

    def exact_u(self, field_name: str, count: np.ndarray | int, total: int
                ) -> NDArray[np.float64]:
        """Term-frequency u for exact agreement on a value ``count`` of ``total`` records
        (or name rows) hold (see `frequency_u`)."""
        return frequency_u(count, total, float(self.u[field_name][EXACT[field_name]]))

    def tf_u(self, field_name: str, level: int, count: np.ndarray, total: int
             ) -> NDArray[np.float64]:
        """The same for any level whose u follows a value's frequency (places)."""
        return frequency_u(count, total, float(self.u[field_name][level]))

    def exact_name(self, field_name: str, count: int, total: int) -> float:
        """log2(m/u) for exact agreement on a value of this frequency (cached: names
        recur, and this is asked for every distinct name of every candidate)."""
        key = (field_name, count, total)
        found = self._exact_cache.get(key)
        if found is None:
            level = EXACT[field_name]
            u = float(frequency_u(count, total, float(self.u[field_name][level])))
            found = self._exact_cache[key] = math.log2(float(self.m[field_name][level]) / u)
        return found

    @functools.cached_property
    def _exact_cache(self) -> dict[tuple[str, int, int], float]:
        return {}

    def changed(self) -> None:
        """Forget what was derived from m and u (after an estimate replaced them)."""
        self.__dict__.pop("weights", None)
        self.__dict__.pop("_exact_cache", None)

    # --- saving -------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({
            "m": {f: v.tolist() for f, v in self.m.items()},
            "u": {f: v.tolist() for f, v in self.u.items()},
            "thresholds": {"match": self.thresholds.match,
                           "possible": self.thresholds.possible},
            "household": {"premises_ratio": self.household.premises_ratio,
                          "postcode_ratio": self.household.postcode_ratio,
                          "given_dob": self.household.given_dob.tolist(),
                          "pairs": self.household.pairs,
                          "premises_rate": self.household.premises_rate,
                          "postcode_rate": self.household.postcode_rate,
                          "shift": self.household.shift},
            "records": self.records, "provenance": self.provenance})

    @classmethod
    def from_json(cls, text: str) -> MatchModel:
        doc = json.loads(text)
        for f in FIELDS:
            if len(doc["m"][f]) != FIELDS[f] or len(doc["u"][f]) != FIELDS[f]:
                raise ValueError(f"model field {f} has the wrong number of levels")
        h = doc["household"]
        return cls(
            {f: np.array(v, dtype=np.float64) for f, v in doc["m"].items()},
            {f: np.array(v, dtype=np.float64) for f, v in doc["u"].items()},
            Thresholds(**doc["thresholds"]),
            Household(h["premises_ratio"], h["postcode_ratio"],
                      np.array(h["given_dob"], dtype=np.float64), h["pairs"],
                      h["premises_rate"], h["postcode_rate"], float(h.get("shift", 0.0))),
            doc["records"], doc["provenance"])
