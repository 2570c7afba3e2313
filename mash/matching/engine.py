"""A first matcher: blocking on exact keys, scoring by agreeing fields.

Deliberately simple; the bands it returns and the SearchOutcome it reports are the contract
the agent relies on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import jellyfish
from rapidfuzz.distance import JaroWinkler

from mash.normalise import postcode_district
from mash.records import PersonRecord
from mash.subject import SubjectQuery

Band = Literal["match", "possible"]


@dataclass(frozen=True)
class Candidate:
    record: PersonRecord
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
    postcodes: list[str] = field(default_factory=list)
    candidates_examined: int = 0


MATCH_THRESHOLD = 12.0
POSSIBLE_THRESHOLD = 7.0


class Matcher:
    def __init__(self, records: Iterable[PersonRecord]) -> None:
        self.records: list[PersonRecord] = []
        self._by_identifier: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._by_dob: dict[object, list[int]] = defaultdict(list)
        self._by_surname_sound: dict[str, list[int]] = defaultdict(list)
        for record in records:
            self.add(record)

    def __len__(self) -> int:
        return len(self.records)

    def add(self, record: PersonRecord) -> None:
        i = len(self.records)
        self.records.append(record)
        for kind, value in record.identifiers.items():
            self._by_identifier[(kind, value)].append(i)
        if record.date_of_birth:
            self._by_dob[record.date_of_birth].append(i)
        for name in record.names:
            if name.family:
                self._by_surname_sound[jellyfish.soundex(name.family)].append(i)

    def _candidates(self, subject: SubjectQuery) -> set[int]:
        found: set[int] = set()
        for kind, value in subject.identifiers.items():
            found.update(self._by_identifier.get((kind, value), ()))
        if subject.date_of_birth:
            found.update(self._by_dob.get(subject.date_of_birth, ()))
        for name in subject.names:
            if name.family:
                found.update(self._by_surname_sound.get(jellyfish.soundex(name.family), ()))
        return found

    def search(self, subject: SubjectQuery) -> SearchOutcome:
        examined = self._candidates(subject)
        candidates = []
        for i in examined:
            record = self.records[i]
            score, matched_on, conflict = score_pair(subject, record)
            if conflict:
                continue
            if score >= MATCH_THRESHOLD:
                band: Band = "match"
            elif score >= POSSIBLE_THRESHOLD:
                band = "possible"
            else:
                continue
            candidates.append(Candidate(record, round(score, 2), band, tuple(matched_on)))
        candidates.sort(key=lambda c: -c.score)
        return SearchOutcome(
            candidates=candidates,
            identifiers_used=sorted(subject.identifiers),
            name_variants=[n.full for n in subject.names],
            postcodes=list(subject.postcodes),
            candidates_examined=len(examined),
        )


def _name_score(subject: SubjectQuery, record: PersonRecord) -> tuple[float, list[str]]:
    best, why = 0.0, []
    for q in subject.names:
        for r in record.names:
            score, on = 0.0, []
            if q.family and r.family:
                sim = JaroWinkler.similarity(q.family, r.family)
                if sim == 1.0:
                    score, on = score + 4.0, [*on, "family_name"]
                elif sim >= 0.92:
                    score, on = score + 2.5, [*on, "family_name~"]
                else:
                    score -= 2.0
            if q.given and r.given:
                sim = JaroWinkler.similarity(q.given, r.given)
                if sim == 1.0:
                    score, on = score + 3.5, [*on, "given_name"]
                elif sim >= 0.9:
                    score, on = score + 2.0, [*on, "given_name~"]
                else:
                    score -= 1.5
            if score > best:
                best, why = score, on
    return best, why


def score_pair(subject: SubjectQuery, record: PersonRecord) -> tuple[float, list[str], bool]:
    """(score, fields that agreed, hard conflict)."""
    score, matched_on = 0.0, []
    for kind, value in subject.identifiers.items():
        held = record.identifiers.get(kind)
        if held is None:
            continue
        if held == value:
            score += 12.0
            matched_on.append(kind)
        else:
            return 0.0, [], True  # a different NHS number is a different person
    name_score, name_on = _name_score(subject, record)
    score += name_score
    matched_on += name_on
    if subject.date_of_birth and record.date_of_birth:
        if subject.date_of_birth == record.date_of_birth:
            score += 5.0
            matched_on.append("date_of_birth")
        else:
            score -= 4.0
    if subject.postcodes and record.postcodes:
        if set(subject.postcodes) & set(record.postcodes):
            score += 3.0
            matched_on.append("postcode")
        elif {postcode_district(p) for p in subject.postcodes} & {
            postcode_district(p) for p in record.postcodes
        }:
            score += 1.0
            matched_on.append("postcode_district")
    if subject.sex and record.sex and subject.sex != record.sex:
        score -= 1.0
    return score, matched_on, False
