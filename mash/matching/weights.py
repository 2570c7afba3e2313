"""Fellegi-Sunter weights: log2(m/u) for each comparison level.

m is the probability of the level among true matches (two records of one person), u among
non-matches (two different people). The m values reflect how often agencies' records of one
person disagree (typos, nicknames, moves); the u values are chance agreement between two
different people in a UK population. For exact name agreement u is replaced by the value's
own frequency in the index (term-frequency adjustment): agreeing on "Smith" is weaker evidence
than agreeing on "Holdsworth". Missing values weigh nothing.
The m and u values are fitted on labelled synthetic data (``python -m mash.matching.fit``,
a seed of its own) where the generator can say; the rest keep the hand-set values.
Thresholds are calibrated on synthetic data (bench/accuracy.py, mash.matching.calibration).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from mash.matching.compare import Agree, Dob, Family, Given, Postcode

# The hand-set table this project started with: the prior the fit falls back on where the
# training data cannot say (see KEPT, KEEP_U and MIN_COUNT in mash/matching/fit.py).
HAND_SET: dict[str, dict[int, tuple[float, float]]] = {
    "given": {
        Given.EXACT: (0.86, 0.01),  # u replaced by the name's frequency
        Given.NICKNAME: (0.06, 0.003),
        Given.FUZZY: (0.04, 0.004),
        Given.PHONETIC: (0.005, 0.006),
        Given.OTHER_FORENAME: (0.01, 0.003),
        Given.INITIAL: (0.005, 0.02),
        Given.DIFFERENT: (0.012, 0.95),
    },
    "family": {
        Family.EXACT: (0.88, 0.005),  # u replaced by the name's frequency
        Family.PART: (0.04, 0.001),
        Family.FUZZY: (0.04, 0.002),
        Family.PHONETIC: (0.01, 0.006),
        Family.DIFFERENT: (0.02, 0.98),
    },
    "dob": {
        Dob.EXACT: (0.90, 0.00004),
        Dob.SWAPPED: (0.02, 0.00004),
        Dob.ONE_PART: (0.08, 0.004),
        Dob.ONE_OFF: (0.08, 0.004),  # was part of ONE_PART
        Dob.YEAR_ONLY: (0.02, 0.0006),
        Dob.DIFFERENT: (0.008, 0.995),
    },
    "postcode": {
        Postcode.FULL: (0.65, 0.0005),
        Postcode.SECTOR: (0.04, 0.004),
        Postcode.DISTRICT: (0.04, 0.03),
        Postcode.DIFFERENT: (0.27, 0.965),
    },
    "sex": {Agree.AGREE: (0.98, 0.5), Agree.DISAGREE: (0.02, 0.5)},
    "identifier": {Agree.AGREE: (0.99, 1e-9), Agree.DISAGREE: (0.001, 1.0)},
}

# BEGIN FITTED TABLE
# Fitted by `python -m mash.matching.fit --seed 303 --level medium --records 50000 --queries 5000`
# (5,000 true pairs, 9,999,897 random non-pairs for names, every record for dates and postcodes)
# field -> level -> (m, u); log2(m/u) bits in the comment
MU: dict[str, dict[int, tuple[float, float]]] = {
    "given": {
        Given.EXACT: (0.85, 0.0111),  # +6.25, fitted
        Given.NICKNAME: (0.0819, 0.00466),  # +4.14, fitted
        Given.FUZZY: (0.0637, 0.00263),  # +4.59, fitted
        Given.PHONETIC: (0.005, 0.006),  # -0.26, by hand: too rare in the training data
        Given.OTHER_FORENAME: (0.01, 0.003),  # +1.74, by hand: too rare in the training data
        Given.INITIAL: (0.005, 0.02),  # -2.00, by hand: too rare in the training data
        Given.DIFFERENT: (0.012, 0.95),  # -6.31, by hand: too rare in the training data
    },
    "family": {
        Family.EXACT: (0.912, 0.00497),  # +7.52, fitted
        Family.PART: (0.0131, 0.000525),  # +4.64, fitted
        Family.FUZZY: (0.0695, 0.00144),  # +5.60, fitted
        Family.PHONETIC: (0.01, 0.006),  # +0.74, by hand: too rare in the training data
        Family.DIFFERENT: (0.02, 0.98),  # -5.61, by hand: too rare in the training data
    },
    "dob": {
        Dob.EXACT: (0.839, 3.58e-05),  # +14.52, fitted
        Dob.SWAPPED: (0.0236, 1.05e-05),  # +11.14, fitted
        Dob.ONE_PART: (0.08, 0.004),  # +4.32, by hand: too rare in the training data
        Dob.ONE_OFF: (0.0897, 0.000204),  # +8.78, fitted
        Dob.YEAR_ONLY: (0.0393, 0.000536),  # +6.19, fitted
        Dob.DIFFERENT: (0.00802, 0.998),  # -6.96, fitted
    },
    "postcode": {
        Postcode.FULL: (0.66, 0.0005),  # +10.37, m fitted, u by hand: no households
        Postcode.SECTOR: (0.04, 0.004),  # +3.32, by hand: too rare in the training data
        Postcode.DISTRICT: (0.04, 0.03),  # +0.42, by hand: too rare in the training data
        Postcode.DIFFERENT: (0.333, 0.981),  # -1.56, fitted
    },
    "sex": {
        Agree.AGREE: (0.98, 0.5),  # +0.97, by hand: the generator never gets it wrong
        Agree.DISAGREE: (0.02, 0.5),  # -4.64, by hand: the generator never gets it wrong
    },
    "identifier": {
        Agree.AGREE: (0.99, 1e-09),  # +29.88, by hand: the generator never gets it wrong
        Agree.DISAGREE: (0.001, 1),  # -9.97, by hand: the generator never gets it wrong
    },
}
# END FITTED TABLE
SWAPPED_NAME_PENALTY = 1.5  # given and family names recorded the wrong way round
TF_FLOOR = 1e-5  # the smallest u a rare name may have
TF_PRIOR = 2000  # pseudo-count of the population-wide u: frequencies in a small index are
                 # noisy (one "Smith" in ten records says little), in a large one they rule


def weight(m: float, u: float) -> float:
    return math.log2(m / u)


def level_weights(field_name: str, size: int) -> np.ndarray:
    """Weights by level as an array (index = level); missing levels weigh 0."""
    out = np.zeros(size, dtype=np.float64)
    for level, (m, u) in MU[field_name].items():
        out[level] = weight(m, u)
    return out


@dataclass(frozen=True)
class Thresholds:
    """Total weight at or above which a candidate is a match / a possible match.

    Calibrated by bench/accuracy.py for the fitted table above (50,000 records, "medium"
    corruption, seed 101, 4,000 queries for people held and 20,000 for people not: see
    bench/results/matching_calibration.json): a 0.1% false-known and 0.05% false-match target.
    """

    match: float = 22.62
    possible: float = 19.62
    records: int = 50_000  # the index size they were calibrated at

    @functools.lru_cache(maxsize=64)  # noqa: B019 (a few frozen instances, asked per search)
    def at(self, records: int) -> Thresholds:
        """The thresholds for an index of ``records``. Every record is one more chance of a
        coincidence: the prior odds that a given record is the person fall as 1/N, so a
        larger index needs log2(N / calibrated N) more bits of evidence. A smaller index keeps
        the calibrated thresholds (never lowered)."""
        extra = max(0.0, math.log2(max(records, 1) / self.records))
        return Thresholds(round(self.match + extra, 2), round(self.possible + extra, 2),
                          records)


@dataclass
class Weights:
    given: np.ndarray = field(default_factory=lambda: level_weights("given", Given.SIZE))
    family: np.ndarray = field(default_factory=lambda: level_weights("family", Family.SIZE))
    dob: np.ndarray = field(default_factory=lambda: level_weights("dob", Dob.SIZE))
    postcode: np.ndarray = field(default_factory=lambda: level_weights("postcode",
                                                                       Postcode.SIZE))
    sex: np.ndarray = field(default_factory=lambda: level_weights("sex", Agree.SIZE))
    identifier: np.ndarray = field(default_factory=lambda: level_weights("identifier",
                                                                         Agree.SIZE))
    thresholds: Thresholds = field(default_factory=Thresholds)

    def exact_name(self, field_name: str, count: int, total: int) -> float:
        """Term-frequency adjusted weight for exact agreement on a name seen ``count``
        times among ``total`` names."""
        m, default_u = MU[field_name][0]
        u = (max(count, 0) + TF_PRIOR * default_u) / (max(total, 0) + TF_PRIOR)
        return weight(m, max(u, TF_FLOOR))
