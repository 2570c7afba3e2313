"""One lookup is about one person: candidates that cannot all be that person are not all
released.

Aliases, other names and previous addresses help find the person asked about; given other
people's names as "aliases", they would find those people too, each a `match` on its own
name. The subject's date of birth, sex and identifiers are the primary subject's, so:

1. A candidate *contradicts* the subject when the record and the subject both hold a date of
   birth, a sex or an identifier of one kind, and they differ (strictly: a date one day off is
   a different date here).
2. When every candidate is consistent with every other and none contradicts the subject, all
   go on, as the matcher found them (a lone record with a mistyped date is still for the
   analyst to confirm).
3. Otherwise a contradicting candidate is left out when it was found only through an alias or
   another address (not by the primary name and address alone), or when the candidates
   disagree among themselves (a contradiction can no longer be read as a typo).
4. If those left still cannot all be one person (the subject gave no date of birth, sex or
   identifier to tell them apart), only those the primary name and address find go on, with
   a warning when even they disagree (namesakes: the analyst must say which, if any, is the
   subject). If the primary name and address find none of them, none is released: the
   answer says the agency holds records that cannot be told apart (WITHHELD), never NOT_KNOWN.

What was left out is said as counts and reasons, never as a value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mash.matching import Candidate
from mash.records import PersonRecord
from mash.subject import SubjectQuery

ONLY_ALIAS = "found only through an alias or another address and contradict the subject's"
CONTRADICT = "contradict the subject's"
DISAGREE = ("found only through an alias or another address and disagree with the other "
            "records on")


def contradictions(record: PersonRecord, subject: SubjectQuery) -> list[str]:
    """What the record and the subject both hold and differ on (field names only)."""
    out = []
    if (subject.date_of_birth is not None and record.date_of_birth is not None
            and record.date_of_birth != subject.date_of_birth):
        out.append("date of birth")
    if subject.sex and record.sex and record.sex != subject.sex:
        out.append("sex")
    for kind, value in sorted(subject.identifiers.items()):
        held = record.identifiers.get(kind)
        if held and held != value:
            out.append(kind.replace("_", " "))
    return out


def disagreements(a: PersonRecord, b: PersonRecord) -> list[str]:
    """What two records both hold and differ on: they cannot be one person."""
    out = []
    if a.date_of_birth is not None and b.date_of_birth is not None and (
            a.date_of_birth != b.date_of_birth):
        out.append("date of birth")
    if a.sex and b.sex and a.sex != b.sex:
        out.append("sex")
    for kind in sorted(a.identifiers.keys() & b.identifiers.keys()):
        if a.identifiers[kind] != b.identifiers[kind]:
            out.append(kind.replace("_", " "))
    return out


def conflicts(candidates: Sequence[Candidate]) -> list[str]:
    """Every field on which some two of the candidates disagree."""
    found: set[str] = set()
    for i, a in enumerate(candidates):
        for b in candidates[i + 1:]:
            found.update(disagreements(a.record, b.record))
    return sorted(found)


def _key(record: PersonRecord) -> tuple[str, str]:
    return record.source, record.record_id


@dataclass
class Selection:
    released: list[Candidate]
    left_out: list[Candidate] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)  # reason -> records left out
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """'3 record(s) were left out: 2 found only through ... date of birth; ...'."""
        parts = [f"{n} {reason}" for reason, n in sorted(self.reasons.items())]
        return (f"{len(self.left_out)} record(s) that cannot be the same person as the subject "
                f"were left out: {'; '.join(parts)}")


def select(candidates: Sequence[Candidate], subject: SubjectQuery,
           found_by_primary: Callable[[], set[tuple[str, str]]]) -> Selection:
    """Keep the candidates consistent with the primary subject (see the module doc).
    `found_by_primary` gives the records the primary name and address alone find (called
    only when it matters)."""
    against = {_key(c.record): contradictions(c.record, subject) for c in candidates}
    disagree = conflicts(candidates)
    if not disagree and not any(against.values()):
        return Selection(list(candidates))
    primary_cache: list[set[tuple[str, str]]] = []

    def primary() -> set[tuple[str, str]]:
        if not primary_cache:
            primary_cache.append(found_by_primary() if _has_extras(subject)
                                 else {_key(c.record) for c in candidates})
        return primary_cache[0]

    out = Selection([])
    for c in candidates:
        why = against[_key(c.record)]
        if why and _key(c.record) not in primary():
            out.left_out.append(c)
            out.reasons[f"{ONLY_ALIAS} {', '.join(why)}"] += 1
        elif why and disagree:
            out.left_out.append(c)
            out.reasons[f"{CONTRADICT} {', '.join(why)}"] += 1
        else:
            out.released.append(c)
    still = conflicts(out.released)
    if not still:
        return out
    by_primary = [c for c in out.released if _key(c.record) in primary()]
    for c in out.released:
        if _key(c.record) not in primary():
            out.left_out.append(c)
            out.reasons[f"{DISAGREE} {', '.join(still)}"] += 1
    out.released = by_primary
    if len(by_primary) > 1 and conflicts(by_primary):
        out.warnings.append(
            f"{len(by_primary)} of the records released cannot all be the same person (they "
            f"differ on {', '.join(conflicts(by_primary))}): confirm which, if any, is the "
            "subject before acting on them")
    return out


def _has_extras(subject: SubjectQuery) -> bool:
    return len(subject.names) > 1 or len(subject.postcodes) > 1 or len(subject.addresses) > 1


def primary_subject(subject: SubjectQuery) -> SubjectQuery:
    """The subject with its primary name and first address only."""
    from dataclasses import replace

    return replace(subject, names=subject.names[:1], postcodes=subject.postcodes[:1],
                   addresses=subject.addresses[:1])
