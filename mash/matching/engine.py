"""The matcher: blocking, Fellegi-Sunter scoring, bands. Candidates go to the analyst to
confirm; records are never merged.

`Candidate`, `SearchOutcome` and `Matcher.search` are the contract the agent relies on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from mash.matching import nicknames
from mash.matching.blocking import (
    first_given,
    query_dates,
    query_keys,
    query_name_variants,
    subject_addresses,
)
from mash.matching.calibration import calibrate
from mash.matching.compare import Agree
from mash.matching.evidence import Reach, reach, reach_of_kinds
from mash.matching.index import MatchIndex, build
from mash.matching.model import MatchModel
from mash.matching.score import Scored, matched_on, score
from mash.records import PersonRecord
from mash.subject import SubjectQuery

Band = Literal["match", "possible"]

DATE_OF_BIRTH_RULES = (
    "exact",
    "day and month swapped",
    "one of day, month or year mistyped (a year by one digit or two swapped digits)",
    "01/01 taken as a placeholder: the year alone",
)


@dataclass(frozen=True)
class Candidate:
    record: PersonRecord
    score: float
    band: Band
    matched_on: tuple[str, ...]
    row: int = -1  # the record's index row (-1: not from an index)


class RecordLookup(Protocol):
    """Where a matcher that holds no records reads the ones it matched (mash.agent's record
    store): all of the rows asked for, in order, or an exception (never some of them)."""

    def fetch(self, rows: Sequence[int]) -> list[PersonRecord]: ...


@dataclass(frozen=True)
class Ranked:
    """A candidate by index row (no record object needed)."""

    row: int
    score: float
    band: Band
    matched_on: tuple[str, ...]


@dataclass
class SearchOutcome:
    candidates: list[Candidate]
    identifiers_used: list[str] = field(default_factory=list)
    name_variants: list[str] = field(default_factory=list)
    date_of_birth_tolerance_days: int = 0
    date_of_birth_day_month_swap: bool = False
    date_of_birth_rules: list[str] = field(default_factory=list)
    postcodes: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    candidates_examined: int = 0


def bands(scored: Scored, model: MatchModel) -> np.ndarray:
    """0 none, 1 possible, 2 match. A match needs the names to agree or an identifier to
    (someone known only by family name, date and address stays possible), and no
    identifier may disagree (a different valid NHS number is for the analyst to look at)."""
    t = model.thresholds
    out = np.zeros(len(scored.rows), dtype=np.int8)
    out[scored.total >= t.possible] = 1
    strong = (scored.names_agree() | scored.any_identifier(Agree.AGREE)) & ~(
        scored.any_identifier(Agree.DISAGREE))
    out[(scored.total >= t.match) & strong] = 2
    return out


def ranked_of(scored: Scored, model: MatchModel, offset: int = 0) -> list[Ranked]:
    """The scored rows at or above the possible threshold, best first (each row + offset)."""
    rows = scored.rows
    if not len(rows):
        return []
    band = bands(scored, model)
    keep = np.nonzero(band > 0)[0]
    keep = keep[np.argsort(-scored.total[keep], kind="stable")]
    return [Ranked(int(rows[i]) + offset, round(float(scored.total[i]), 2),
                   "match" if band[i] == 2 else "possible", matched_on(scored, int(i)))
            for i in keep.tolist()]


def name_variants(subject: SubjectQuery, limit: int = 20) -> list[str]:
    """The names searched for, as an analyst would read them."""
    out: list[str] = []
    for name in query_name_variants(subject):
        out.append(name.full)
    for name in subject.names:
        given = first_given(name)
        for nick in nicknames.variants(given):
            out.append(" ".join(p for p in (nick, name.family) if p))
    unique = list(dict.fromkeys(out))  # the first of each, in order
    return unique[:limit]


class Matcher:
    """Finds a subject among records. ``records[i]`` is row i of the index; a matcher given
    an index, its model and a ``lookup`` instead holds no records and reads only those it
    matched, when it matched them."""

    def __init__(self, records: Sequence[PersonRecord] = (), *, index: MatchIndex | None = None,
                 model: MatchModel | None = None,
                 progress: Callable[[int], None] | None = None,
                 target_false_known: float | None = None,
                 lookup: RecordLookup | None = None) -> None:
        """``model``: a saved calibration of this index; without one the index calibrates
        itself on its records (mash.matching.calibration)."""
        self.records: Sequence[PersonRecord] = (
            records if isinstance(records, list) else list(records))
        if lookup is not None and (self.records or index is None or model is None):
            raise ValueError("a matcher with a record lookup takes an index and its model, "
                             "and no records")
        self.lookup = lookup
        self.index = index if index is not None else build(self.records, progress)
        if self.records and len(self.index) != len(self.records):
            raise ValueError("the index does not hold the same records")
        if model is None:
            model = (calibrate(self.index, self.records) if target_false_known is None else
                     calibrate(self.index, self.records, target_false_known=target_false_known))
        self.model = model

    def __len__(self) -> int:
        return len(self.index)

    def scored(self, subject: SubjectQuery, floor: float | None = None) -> Scored:
        """Every blocked candidate with its weights, before any threshold (with ``floor``:
        those that can reach it, see `score`)."""
        rows = self.index.candidates(query_keys(subject))
        return score(self.index, subject, rows, self.model, floor=floor)

    def rank(self, subject: SubjectQuery) -> tuple[list[Ranked], int]:
        """(candidates at or above the possible threshold, best first; rows examined)."""
        scored = self.scored(subject, floor=self.model.thresholds.possible)
        return ranked_of(scored, self.model), scored.examined

    def reach(self, subject: SubjectQuery) -> Reach:
        """Whether the subject gives enough evidence to be searched (see evidence.py)."""
        return reach(self.index, self.model, subject)

    def reach_of_kinds(self, kinds: set[str]) -> Reach:
        return reach_of_kinds(self.model, len(self.index), self.index.name_rows, kinds)

    def fetch(self, rows: Sequence[int]) -> list[PersonRecord]:
        """The records at these rows: held, or read from the lookup (which may raise)."""
        if self.lookup is not None:
            return self.lookup.fetch(rows) if rows else []
        return [self.records[row] for row in rows]

    def search(self, subject: SubjectQuery) -> SearchOutcome:
        """The candidates for `subject`, each with its record (read from the lookup, if the
        matcher holds none: its errors propagate, and no candidate is given without one)."""
        ranked, examined = self.rank(subject)
        dates = query_dates(subject)
        records = self.fetch([r.row for r in ranked])
        return SearchOutcome(
            candidates=[Candidate(record, r.score, r.band, r.matched_on, r.row)
                        for r, record in zip(ranked, records, strict=True)],
            identifiers_used=sorted(subject.identifiers),
            name_variants=name_variants(subject),
            date_of_birth_tolerance_days=0,
            date_of_birth_day_month_swap=len(dates) > 1,
            date_of_birth_rules=list(DATE_OF_BIRTH_RULES) if subject.date_of_birth else [],
            postcodes=list(subject.postcodes),
            addresses=[a.text for a in subject_addresses(subject)],
            candidates_examined=examined,
        )
