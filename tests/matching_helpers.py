"""Building records and subjects for the matching tests from plain text."""

from __future__ import annotations

import datetime as dt

from mash.normalise import name_tokens, normalise_postcode
from mash.records import PersonRecord
from mash.subject import Name, SubjectQuery


def name(given: str, family: str, middle: str = "") -> Name:
    return Name(*(" ".join(name_tokens(p)) for p in (given, middle, family)))


def _pcs(postcodes: tuple[str, ...]) -> tuple[str, ...]:
    out = tuple(normalise_postcode(p) for p in postcodes)
    assert all(out)
    return out  # type: ignore[return-value]


def record(given: str, family: str, dob: str | None, *postcodes: str, sex: str = "",
           middle: str = "", record_id: str = "R1", **identifiers: str) -> PersonRecord:
    return PersonRecord(record_id=record_id, source="test", names=(name(given, family, middle),),
                        date_of_birth=dt.date.fromisoformat(dob) if dob else None, sex=sex,
                        postcodes=_pcs(postcodes), identifiers=dict(identifiers),
                        values={"person_id": record_id})


def subject(given: str, family: str, dob: str | None, *postcodes: str, sex: str = "",
            **identifiers: str) -> SubjectQuery:
    return SubjectQuery(names=(name(given, family),),
                        date_of_birth=dt.date.fromisoformat(dob) if dob else None, sex=sex,
                        postcodes=_pcs(postcodes), identifiers=dict(identifiers))
