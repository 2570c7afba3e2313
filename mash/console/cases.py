"""The console's cases as its pages hold them: the case form read as a case file and
checked field by field, the stored family picture drawn as a grid, and single lookups kept
in the case store for My lookups. The pages themselves are in routes_cases.py, asking again
in case_follow_up.py."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from mash.audit.errors import AuditError
from mash.cases.casefile import CaseFileError, key_of
from mash.cases.picture import STATE_SYMBOLS, STATE_WORDS, still_to_ask
from mash.cases.store import CaseStore, CaseStoreError, StoredCase
from mash.console.forms import TEXT_FIELDS, LookupForm, validate
from mash.console.pages import Refused
from mash.console.sessions import Session, UnsignedSession
from mash.identity.tokens import Analyst
from mash.logs import get_logger
from mash.v1 import lookup_pb2
from mash.yamlfile import Location

log = get_logger(__name__)
REQUESTS = "requests"  # the stored picture's sealed questions (never exported or shown)
FORM_PEOPLE = 6  # person rows on the form; a case file takes up to 30
CASE_FIELDS = ("reference", "purpose", "stage", "urgency", "reason")
PERSON_FIELDS = ("relationship", "name", "dob", "postcode", "nhs")
LABELS = {"reference": "Case reference", "purpose": "Purpose", "stage": "Stage",
          "urgency": "Urgency", "reason": "Why the household is looked up",
          "relationship": "Relationship to the child", "name": "Full name",
          "dob": "Date of birth", "postcode": "Postcode", "nhs": "NHS number"}
STATE_CLASSES = {"KNOWN": "known", "NOT_KNOWN": "not-known", "WITHHELD": "withheld",
                 "NOT_CHECKED": "not-checked"}


def case_data(form: dict[str, str]) -> dict[str, Any]:
    """The form as a case file's data: people are the rows with anything typed in them."""
    data: dict[str, Any] = {k: form.get(k, "").strip() for k in CASE_FIELDS}
    people = []
    for i in range(FORM_PEOPLE):
        row = {k: form.get(f"p{i}-{k}", "").strip() for k in PERSON_FIELDS}
        if not any(v for k, v in row.items() if k != "relationship"):
            continue
        person: dict[str, Any] = {"relationship": row["relationship"] or "other"}
        for key in ("name", "dob", "nhs"):
            if row[key]:
                person[key] = row[key]
        if row["postcode"]:
            person["postcodes"] = [row["postcode"]]
        people.append(person)
    data["people"] = people
    return data


# the lookup form's names for the case form's fields
_CASE_KEYS = {"purpose": "purpose", "stage": "stage", "case": "reference",
              "reason": "reason", "urgency": "urgency"}
_PERSON_KEYS = {"name": "name", "aliases": "name", "dob": "dob", "postcodes": "postcode",
                "nhs": "nhs", "sex": "name"}


def field_errors(form: dict[str, str],
                 purposes: dict[str, list[str]] | None) -> tuple[dict[str, str], list[str]]:
    """Every field of the case form checked at once, each on its own, by the lookup form's
    rules (mash.subject, mash.context: the broker's): messages by field ("stage",
    "p1-dob"...) and those that belong to no one field."""
    errors: dict[str, str] = {}
    general: list[str] = []
    context = {"purpose": form.get("purpose", ""), "stage": form.get("stage", ""),
               "case": form.get("reference", ""), "reason": form.get("reason", ""),
               "urgency": form.get("urgency", "")}
    rows = [i for i in range(FORM_PEOPLE)
            if any(form.get(f"p{i}-{k}", "").strip() for k in PERSON_FIELDS
                   if k != "relationship")]
    if not rows:
        errors["p0-name"] = "add the child the referral is about: a name and date of birth"
    for n, i in enumerate(rows or [-1]):
        values = dict.fromkeys(TEXT_FIELDS, "") | context
        if i >= 0:
            values |= {"name": form.get(f"p{i}-name", ""), "dob": form.get(f"p{i}-dob", ""),
                       "postcodes": form.get(f"p{i}-postcode", ""),
                       "nhs": form.get(f"p{i}-nhs", "")}
        checked = LookupForm.from_post(values)
        validate(checked, purposes)
        for key, message in checked.errors.items():
            if key in _CASE_KEYS:
                if n == 0:
                    errors.setdefault(_CASE_KEYS[key], message)
            elif i >= 0:
                errors.setdefault(f"p{i}-{_PERSON_KEYS.get(key, 'name')}", message)
        if i >= 0:
            general += [f"Person {i + 1}: {m}" for m in checked.general]
    return errors, general


def form_error(data: dict[str, Any]) -> Callable[[Location, str], CaseFileError]:
    """Place a problem on the form: 'Person 2 (father): Date of birth: ...'."""
    def error(where: Location, message: str) -> CaseFileError:
        if len(where) >= 2 and where[0] == "people" and isinstance(where[1], int):
            people = data.get("people") or []
            who = people[where[1]].get("relationship", "") if where[1] < len(people) else ""
            field = LABELS.get(str(where[2]), str(where[2])) + ": " if len(where) > 2 else ""
            return CaseFileError(f"Person {where[1] + 1} ({who}): {field}{message}")
        if where and str(where[0]) in LABELS:
            return CaseFileError(f"{LABELS[str(where[0])]}: {message}")
        return CaseFileError(f"{key_of(where)}: {message}" if where else message)
    return error


def waiting_of(picture: dict[str, Any]) -> list[str]:
    """The agencies some person is still NOT CHECKED for that asking again may change."""
    return sorted({a for person in picture["people"] for a in still_to_ask(person)})


def live_grid(picture: dict[str, Any]) -> dict[str, Any]:
    """The grid for the live page's script: agencies, and per person each cell's state in
    word and symbol, its class, reason and detail (no questions, no full answers)."""
    drawn = grid(picture)
    return {"agencies": drawn["agencies"], "not_checked": drawn.get("not_checked", 0),
            "rows": [{"index": row["index"], "cells": [
                {k: cell.get(k, "") for k in ("agency", "agency_name", "css", "word",
                                              "symbol", "reason", "detail")}
                for cell in row["cells"]]} for row in drawn["rows"]]}


def grid(picture: dict[str, Any]) -> dict[str, Any]:
    """The stored picture as the template draws it: word, symbol and class per cell."""
    rows = []
    for person in picture["people"]:
        cells = []
        for agency in picture["agencies"]:
            cell = person["cells"][agency["id"]]
            cells.append({**cell, "agency": agency["id"], "agency_name": agency["name"],
                          "css": STATE_CLASSES[cell["state"]],
                          "word": STATE_WORDS[cell["state"]],
                          "symbol": STATE_SYMBOLS[cell["state"]]})
        rows.append({**person, "cells": cells})
    return {**picture, "rows": rows}


LOOKUP = "lookup"  # the header's kind for a single lookup kept for My lookups
KEPT_FORM_FIELDS = ("name", "aliases", "dob", "sex", "postcodes", "nhs", "upn", "pnc", "ni",
                    "local", "purpose", "stage", "case", "reason", "urgency")


class KeptLookups:
    """Single lookups kept in the case store (same key, retention and audited reopening), so
    that My lookups reopens a result without asking again. The header names the lookup id,
    case reference, purpose, stage and urgency; the sealed part holds what was typed (not a
    stage approval) and the broker's response."""

    def __init__(self, store: CaseStore) -> None:
        self.store = store

    def save(self, owner: str, values: dict[str, str],
             response: lookup_pb2.LookupResponse) -> StoredCase:
        header = {"kind": LOOKUP, "lookup_id": response.lookup_id,
                  "reference": values.get("case", ""), "purpose": values.get("purpose", ""),
                  "stage": values.get("stage", ""), "urgency": values.get("urgency", "")}
        kept = {"form": {k: values.get(k, "") for k in KEPT_FORM_FIELDS},
                "response": base64.b64encode(response.SerializeToString()).decode()}
        return self.store.save(owner=owner, header=header, picture=kept)

    def kept_of(self, owner: str) -> list[StoredCase]:
        """The owner's lookups still kept, newest first (headers only: no answers)."""
        return [c for c in self.store.cases_of(owner) if c.header.get("kind") == LOOKUP]

    def reopen(self, kept_id: str, analyst: Analyst) -> tuple[StoredCase, dict[str, str],
                                                          lookup_pb2.LookupResponse]:
        """(CaseStoreError: not kept or not theirs; AuditError: not recorded, not shown)."""
        stored, kept = self.store.reopen(kept_id, analyst=analyst)
        if stored.header.get("kind") != LOOKUP:
            raise CaseStoreError("no such lookup: it is a case")
        response = lookup_pb2.LookupResponse.FromString(base64.b64decode(kept["response"]))
        return stored, dict(kept["form"]), response


def is_case_id(text: str) -> bool:
    """Whether `text` has the shape of a stored case's id (32 hex digits)."""
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


def reopen_case(store: CaseStore, session: Session, case_id: str,
                fmt: str) -> tuple[StoredCase, dict[str, Any]]:
    """The analyst's case and its picture, the reopening audited first (`fmt`: what it is
    reopened for); Refused 404 for no such case of theirs, 503 when it cannot be audited."""
    if not is_case_id(case_id):
        raise Refused(404, "There is no such case.")
    try:
        stored, picture = store.reopen(case_id, analyst=session.analyst)
    except CaseStoreError as exc:
        raise Refused(404, str(exc)) from None
    except AuditError:
        raise Refused(503, "This case cannot be shown: reopening it could not be "
                           "recorded in the audit trail.") from None
    if stored.header.get("kind") == LOOKUP:  # a single lookup: My lookups shows it
        raise Refused(404, "There is no such case.")
    log.info("case_reopened", case_id=case_id, by=session.analyst.subject, format=fmt)
    return stored, picture


def signable(session: Session) -> None:
    """Refuse before asking anyone when the session's token is bound to a key it does
    not hold (its lookups could not be signed)."""
    try:
        session.signing_key()
    except UnsignedSession as exc:
        raise Refused(401, f"No lookup was sent: {exc}") from None
