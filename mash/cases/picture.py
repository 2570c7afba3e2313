"""The family picture: people down the side, agencies across the top, one state per cell.

An agency that one person's lookup asked and another's did not (it registered between the two,
or the lookup named agencies) is NOT CHECKED for the person it did not answer about: a cell is
never left blank, because a blank reads as "nothing known".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf.json_format import MessageToDict

from mash.answers import NOT_CHECKED_LABELS, STATE_LABELS
from mash.cases.model import Case, Person
from mash.v1 import answer_pb2, lookup_pb2

# The word and the symbol for each state; NOT CHECKED must never be mistaken for NOT KNOWN.
STATE_WORDS = {"KNOWN": "KNOWN", "NOT_KNOWN": "NOT KNOWN", "WITHHELD": "WITHHELD",
               "NOT_CHECKED": "NOT CHECKED"}
STATE_SYMBOLS = {"KNOWN": "●", "NOT_KNOWN": "○", "WITHHELD": "◐", "NOT_CHECKED": "⚠"}


@dataclass(frozen=True)
class Cell:
    state: str  # KNOWN | NOT_KNOWN | WITHHELD | NOT_CHECKED
    reason: str = ""  # NOT_CHECKED: why, in words
    detail: str = ""

    @property
    def text(self) -> str:
        """The state in word and symbol, e.g. '⚠ NOT CHECKED'."""
        return f"{STATE_SYMBOLS[self.state]} {STATE_WORDS[self.state]}"

    def to_dict(self) -> dict[str, str]:
        return {"state": self.state, "text": self.text, "reason": self.reason,
                "detail": self.detail}


NOT_ASKED = Cell("NOT_CHECKED", "not asked", "this person's lookup did not ask this agency")


def cell_of(answer: answer_pb2.AgencyAnswer) -> Cell:
    state = STATE_LABELS.get(answer.state)
    if state is None:  # a malformed state released nothing the analyst may rely on
        return Cell("NOT_CHECKED", "unreadable answer", answer.detail)
    reason = NOT_CHECKED_LABELS.get(answer.not_checked_reason, "") if state == "NOT_CHECKED" else ""
    if state == "NOT_CHECKED" and not reason:
        reason = "no reason given"
    return Cell(state, reason, answer.detail)


@dataclass(frozen=True)
class Row:
    index: int  # the person's place in the case file
    person: Person
    response: lookup_pb2.LookupResponse

    def cell(self, agency: str) -> Cell:
        for answer in self.response.answers:
            if answer.agency_id == agency:
                return cell_of(answer)
        return NOT_ASKED


@dataclass(frozen=True)
class FamilyPicture:
    case: Case
    rows: tuple[Row, ...]

    @property
    def agencies(self) -> list[tuple[str, str]]:
        """(id, name) of every agency any lookup answered for, in a stable order."""
        names: dict[str, str] = {}
        for row in self.rows:
            for answer in row.response.answers:
                names.setdefault(answer.agency_id, answer.agency_name or answer.agency_id)
        return sorted(names.items())

    @property
    def not_checked(self) -> int:
        return sum(1 for row in self.rows for agency, _ in self.agencies
                   if row.cell(agency).state == "NOT_CHECKED")

    def to_dict(self) -> dict[str, Any]:
        """For the case record: the grid, and each person's full answers."""
        agencies = self.agencies
        return {
            "case": {"reference": self.case.reference, "purpose": self.case.purpose,
                     "stage": self.case.stage, "urgency": self.case.urgency},
            "agencies": [{"id": a, "name": n} for a, n in agencies],
            "people": [{
                "index": row.index, "relationship": row.person.relationship,
                "label": row.person.label(), "lookup_id": row.response.lookup_id,
                "cells": {a: row.cell(a).to_dict() for a, _ in agencies},
                "answers": [MessageToDict(answer, preserving_proto_field_name=True)
                            for answer in row.response.answers],
            } for row in self.rows],
            "not_checked": self.not_checked,
        }


NOT_ASKED_AGAIN = frozenset({"no agreement"})  # re-asking cannot change these


def still_to_ask(person: dict[str, Any]) -> list[str]:
    """The agencies a stored person's row is NOT CHECKED for that asking again may change."""
    return sorted(a for a, cell in person["cells"].items()
                  if cell["state"] == "NOT_CHECKED" and cell["reason"] not in NOT_ASKED_AGAIN)


def merge_later(picture: dict[str, Any], index: int,
                response: lookup_pb2.LookupResponse) -> int:
    """Put a later lookup's answers for one person into a stored picture (the dict of
    `FamilyPicture.to_dict`); agencies new to the picture get a column, NOT CHECKED ("not
    asked") for everyone else. Returns how many cells changed state."""
    person = next(p for p in picture["people"] if p["index"] == index)
    known = {a["id"] for a in picture["agencies"]}
    changed = 0
    for answer in response.answers:
        if answer.agency_id not in known:
            picture["agencies"].append({"id": answer.agency_id,
                                        "name": answer.agency_name or answer.agency_id})
            picture["agencies"].sort(key=lambda a: a["id"])
            known.add(answer.agency_id)
            for other in picture["people"]:
                other["cells"].setdefault(answer.agency_id, NOT_ASKED.to_dict())
        new = cell_of(answer).to_dict()
        if person["cells"].get(answer.agency_id, {}).get("state") != new["state"]:
            changed += 1
        person["cells"][answer.agency_id] = new
        person["answers"] = [a for a in person["answers"] if a.get("agency_id") !=
                             answer.agency_id]
        person["answers"].append(MessageToDict(answer, preserving_proto_field_name=True))
    person.setdefault("later_lookup_ids", []).append(response.lookup_id)
    picture["not_checked"] = sum(1 for p in picture["people"] for c in p["cells"].values()
                                 if c["state"] == "NOT_CHECKED")
    return changed
