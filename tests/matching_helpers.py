"""Building records and subjects for the matching tests from plain text."""

from __future__ import annotations

import datetime as dt

from mash.normalise import name_tokens, normalise_postcode
from mash.records import PersonRecord
from mash.subject import Name, SubjectQuery


def name(given: str, family: str, middle: str = "") -> Name:
    return Name(*(" ".join(name_tokens(p, family=i == 2))
                   for i, p in enumerate((given, middle, family))))


def _pcs(postcodes: tuple[str, ...]) -> tuple[str, ...]:
    out = tuple(normalise_postcode(p) for p in postcodes)
    assert all(out)
    return out  # type: ignore[return-value]


def record(given: str, family: str, dob: str | None, *postcodes: str, sex: str = "",
           middle: str = "", record_id: str = "R1", address: str = "",
           **identifiers: str) -> PersonRecord:
    return PersonRecord(record_id=record_id, source="test", names=(name(given, family, middle),),
                        date_of_birth=dt.date.fromisoformat(dob) if dob else None, sex=sex,
                        postcodes=_pcs(postcodes), identifiers=dict(identifiers),
                        values={"person_id": record_id},
                        addresses=(address,) if address else ())


def subject(given: str, family: str, dob: str | None, *postcodes: str, sex: str = "",
            address: str = "", **identifiers: str) -> SubjectQuery:
    return SubjectQuery(names=(name(given, family),) if given or family else (),
                        date_of_birth=dt.date.fromisoformat(dob) if dob else None, sex=sex,
                        postcodes=_pcs(postcodes), identifiers=dict(identifiers),
                        addresses=(address,) if address else ())


def evaluate(matcher, sc) -> dict:
    """Recall on a scenario's held people, the false-known rate on its strangers (and on
    its household members, when it has them), with the counts."""
    import numpy as np

    from mash.matching.calibration import wilson
    from mash.matching.engine import bands

    person = np.array([r.values.get("person_id", "") for r in matcher.records], dtype=object)
    found = 0
    for query, person_id in sc.in_records:
        scored = matcher.scored(query)
        band = bands(scored, matcher.model)
        found += bool((band[person[scored.rows] == person_id] > 0).any())

    def known(queries) -> int:
        return sum(bool((bands(matcher.scored(q), matcher.model) > 0).any()) for q in queries)

    false_known = known(sc.strangers)
    household = known([q for q, _ in sc.household])
    members = len(sc.in_records)
    return {"found": found, "queries_in_records": members, "recall": found / members,
            "recall_ci95": wilson(found, members), "false_known": false_known,
            "false_known_rate": false_known / max(1, len(sc.strangers)),
            "household_known": household,
            "household_known_rate": household / max(1, len(sc.household))}
