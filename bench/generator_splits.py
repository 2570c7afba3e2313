"""This project's generator as query-mode splits: an area's households, half of whose
people an agency holds, with queries for held people, strangers (other households) and
household members the agency does not hold (a twin, a sibling, a parent of a held person).

    generator_split("generator-medium", seed=1, records=20_000)
"""

from __future__ import annotations

from bench.splits import Split, half_of
from mash.records import PersonRecord
from mash.subject import SubjectQuery
from mash.synth.corrupt import LEVELS, scenario

DEFAULT_RECORDS = 20_000
DEFAULT_QUERIES = 2_000  # per kind


def _record(r: PersonRecord) -> dict[str, str]:
    name = r.names[0]
    return {"record_id": r.record_id, "person_id": r.values["person_id"],
            "given_name": name.given, "middle_names": name.middle, "family_name": name.family,
            "date_of_birth": r.date_of_birth.isoformat() if r.date_of_birth else "",
            "sex": r.sex, "postcode": r.postcodes[0] if r.postcodes else "",
            "previous_postcodes": ";".join(r.postcodes[1:]),
            "address": r.addresses[0] if r.addresses else "",
            **{k: v for k, v in r.identifiers.items()}}


def _query(q: SubjectQuery, query_id: str, person: str, kind: str, seed: int
           ) -> dict[str, str]:
    name = q.names[0]
    return {"query_id": query_id, "person_id": person, "kind": kind,
            "half": half_of(query_id, seed), "given_name": name.given,
            "family_name": name.family,
            "date_of_birth": q.date_of_birth.isoformat() if q.date_of_birth else "",
            "sex": q.sex, "postcode": q.postcodes[0] if q.postcodes else "",
            "address": q.addresses[0] if q.addresses else "", **dict(q.identifiers)}


def generator_split(name: str, seed: int = 1, records: int = DEFAULT_RECORDS,
                    queries: int = DEFAULT_QUERIES) -> Split:
    """``name`` is generator-<level> (clean, low, medium, high)."""
    level = name.split("-", 1)[1]
    if level not in LEVELS:
        raise ValueError(f"unknown corruption level {level!r} (known: {', '.join(LEVELS)})")
    sc = scenario(records, queries, level, seed=seed * 1009 + 17, n_strangers=queries,
                  n_household=queries)
    rows = [_record(r) for r in sc.records]
    out = []
    for i, (q, person) in enumerate(sc.in_records):
        out.append(_query(q, f"held-{i}", person, "held", seed))
    for i, q in enumerate(sc.strangers):
        out.append(_query(q, f"stranger-{i}", "", "stranger", seed))
    for i, ((q, _), twin) in enumerate(zip(sc.household, sc.household_twins, strict=True)):
        out.append({**_query(q, f"household-{i}", "", "household", seed),
                    "same_sex_twin": "1" if twin else ""})
    return Split(name, f"the generator at {level}: {records:,} of an area's people held "
                 f"(households held in part), {queries:,} queries each for held people, "
                 "strangers and household members not held", rows, out,
                 {"seed": seed, "source": "mash.synth", "level": level})
