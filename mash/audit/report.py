"""Search and export: "who looked up this person, when and why".

`search` finds entries by subject (any of its keyed hashes, computed exactly as at write time),
case reference, requester or lookup id, within a time range; criteria of different kinds must
all hold. Each hit says whether the stored row is still intact (its own hashes; `verify` checks
the chain) and which evidence matched. `write_csv` (one row per agency outcome) and
`write_json` (one object per entry) produce the report for a subject access request or a case
review. Exports never contain the subject hashes, only what matched.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from mash.audit.chain import EntryRow, format_time, row_fault
from mash.audit.entry import AuditEntry
from mash.audit.errors import AuditError
from mash.audit.store import AuditStore, Filter
from mash.audit.subject_hash import SubjectHasher
from mash.csvcells import write_dicts
from mash.errors import ValidationError
from mash.subject import SubjectQuery


@dataclass(frozen=True)
class Criteria:
    subject: SubjectQuery | None = None
    case_reference: str = ""
    requester: str = ""
    lookup_id: str = ""
    since: str = ""  # format_time text; see parse_when
    until: str = ""
    writer_id: str = ""
    # The person as an agency holds them: keyed hashes of its matched records (an agent's
    # entries record them for every KNOWN or WITHHELD answer), and lookups another party's
    # subject access search found (an agency's report handed to the broker). Either finds a
    # lookup however the analyst typed the subject; they and `subject` are alternatives.
    record_refs: tuple[str, ...] = ()
    lookup_ids: tuple[str, ...] = ()

    def describe(self) -> dict[str, str]:
        """The criteria for a report header, without the subject's identifiers."""
        out = {k: v for k, v in (("case_reference", self.case_reference),
                                 ("requester", self.requester), ("lookup_id", self.lookup_id),
                                 ("since", self.since), ("until", self.until),
                                 ("writer_id", self.writer_id)) if v}
        if self.subject is not None:
            out["subject"] = "given (identifiers hashed with the audit key)"
        if self.record_refs:
            out["records"] = f"{len(self.record_refs)} of the agency's records"
        if self.lookup_ids:
            out["lookups"] = f"{len(self.lookup_ids)} lookups named by another party's search"
        return out

    @property
    def names_a_person(self) -> bool:
        return bool(self.subject or self.record_refs or self.lookup_ids)


@dataclass(frozen=True)
class Found:
    row: EntryRow
    entry: AuditEntry | None  # None once retention purged the body
    intact: bool
    matched_on: tuple[str, ...] = ()


def parse_when(text: str, end: bool = False) -> str:
    """'2025-03-01' or an ISO time (UTC unless it says otherwise) -> stored time text.
    A bare date as an end means the end of that day."""
    text = text.strip()
    if not text:
        return ""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day, dt.time(), dt.UTC)
            if end:
                moment += dt.timedelta(days=1)
        else:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
    except ValueError:
        raise ValidationError(f"{text!r} is not a date (2025-03-01) or ISO time") from None
    return format_time(moment)


def _entry(row: EntryRow) -> AuditEntry | None:
    if row.body is None:
        return None
    try:
        return AuditEntry.from_json(row.body)
    except (ValueError, TypeError, AuditError):
        return None


def search(store: AuditStore, criteria: Criteria, hasher: SubjectHasher | None = None,
           limit: int | None = None) -> list[Found]:
    labels: dict[str, str] = {}
    if criteria.subject is not None:
        if hasher is None:
            raise AuditError("searching by subject needs the audit hash key")
        labels = hasher.keys(criteria.subject)
        if not labels and not (criteria.record_refs or criteria.lookup_ids):
            raise ValidationError("the subject gives nothing to search by: add an identifier, "
                                  "or a name with the date of birth")
    checks = {"c": criteria.case_reference, "r": criteria.requester, "l": criteria.lookup_id}
    person = {f"s:{h}": labels[h] for h in labels}
    person |= {f"m:{r}": "matched record" for r in criteria.record_refs}
    person |= {f"l:{i}": "lookup found by the agency" for i in criteria.lookup_ids}
    if person:
        keys = tuple(sorted(person))
    else:
        kind = next((k for k, v in checks.items() if v), "")
        keys = (f"{kind}:{checks[kind]}",) if kind else ()
    rows = store.find(Filter(keys, criteria.since, criteria.until, criteria.writer_id), limit)
    out = []
    for row in rows:
        entry = _entry(row)
        if entry is not None:
            wanted = {f"{k}:{v}" for k, v in checks.items() if v}
            if not wanted <= set(entry.index_keys()):
                continue
        elif any(checks.values()) and not labels:
            continue
        matched = tuple(sorted({person[k] for k in (entry.index_keys() if entry else ())
                                if k in person}))
        out.append(Found(row, entry, row_fault(row) is None, matched))
    return out


def outcome_text(entry: AuditEntry) -> str:
    return "; ".join(f"{o.agency}={o.state}" + (f"({o.reason})" if o.reason else "")
                     for o in entry.outcomes)


CSV_COLUMNS = (
    "recorded_at", "writer_id", "seq", "intact", "event", "lookup_id", "query_id", "requester",
    "requester_agency", "role", "team", "purpose", "stage", "case_reference", "justification",
    "urgency", "policy_revision", "agreements", "asked", "matched_on", "agency", "state",
    "reason", "agreement_id", "agency_policy_revision", "matches", "fields_released",
    "fields_withheld", "detail",
)


def _entry_record(found: Found) -> dict[str, Any]:
    row, entry = found.row, found.entry
    base: dict[str, Any] = {"recorded_at": row.recorded_at, "writer_id": row.writer_id,
                            "seq": row.seq, "entry_hash": row.entry_hash,
                            "intact": found.intact, "matched_on": list(found.matched_on)}
    if entry is None:
        return {**base, "purged": True, "agreements": list(row.agreements)}
    data = entry.to_dict()
    data.pop("subject")
    return {**base, "purged": False, **data}


def csv_rows(found: list[Found]) -> list[dict[str, Any]]:
    rows = []
    for item in found:
        record = _entry_record(item)
        flat = {k: record.get(k, "") for k in CSV_COLUMNS}
        flat.update(matched_on=" ".join(item.matched_on),
                    agreements=" ".join(record.get("agreements", ())),
                    asked=" ".join(record.get("asked", ())))
        outcomes = record.get("outcomes") or [None]
        for outcome in outcomes:
            line = dict(flat)
            if outcome:
                line.update(
                    agency=outcome["agency"], state=outcome["state"], reason=outcome["reason"],
                    agreement_id=outcome["agreement_id"],
                    agency_policy_revision=outcome["policy_revision"],
                    matches=outcome["matches"],
                    fields_released=" ".join(f"{r['field']}:{r['transform']}"
                                             for r in outcome["released"]),
                    fields_withheld=" ".join(outcome["withheld"]))
            rows.append(line)
    return rows


def write_csv(found: list[Found], out: TextIO) -> None:
    """One row per agency outcome; every cell neutralised against spreadsheet formulas."""
    write_dicts(out, fieldnames=CSV_COLUMNS, rows=csv_rows(found))


def write_json(found: list[Found], out: TextIO, criteria: Criteria) -> None:
    doc = {"report": "mash audit export", "generated_at": format_time(),
           "criteria": criteria.describe(),
           # hand these to the broker (mash audit export --lookups-from) for its side
           "lookup_ids": sorted({f.entry.lookup_id for f in found
                                 if f.entry is not None and f.entry.lookup_id}),
           "entries": [_strip(_entry_record(f)) for f in found]}
    json.dump(doc, out, indent=2, ensure_ascii=False)
    out.write("\n")


def _strip(record: dict[str, Any]) -> dict[str, Any]:
    """record_refs locate records inside the agency: they are not for reports."""
    for outcome in record.get("outcomes", []):
        outcome.pop("record_refs", None)
    return record


_LOOKUP_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_LOOKUP_IDS = 100_000


def read_lookup_ids(path: Path) -> tuple[str, ...]:
    """The lookup ids an agency's subject access report names: its JSON export
    (`lookup_ids`), or a text file with one id a line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{path}: cannot read it ({type(exc).__name__})") from None
    ids: list[str]
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
            ids = [str(i) for i in doc["lookup_ids"]]
        except (ValueError, KeyError, TypeError):
            raise ValidationError(f"{path}: a JSON report without a list of lookup_ids "
                                  "(write it with mash audit export --format json)") from None
    else:
        ids = [line.strip() for line in text.splitlines() if line.strip()]
    if len(ids) > MAX_LOOKUP_IDS:
        raise ValidationError(f"{path}: more than {MAX_LOOKUP_IDS} lookup ids")
    bad = next((i for i in ids if not _LOOKUP_ID.match(i)), None)
    if bad is not None:
        raise ValidationError(f"{path}: {bad[:40]!r} is not a lookup id")
    return tuple(sorted(set(ids)))
