"""Reading a case file (family.yaml): every problem is one line naming the line and the key.

    reference: MASH-2026-0107
    purpose: child_safeguarding
    stage: research
    urgency: red
    reason: School referral about bruising; the household is checked together
    agencies: [police, health]        # optional: the default is every agency allowed
    people:
      - relationship: child           # exactly one: the child the referral is about
        name: Leah Thompson
        dob: 2014-05-17
        postcodes: [LS9 8AB]
      - relationship: father
        name: Darren Thompson
        dob: 1986-07-21

The file is checked in full before anything is asked: the shape (pydantic), then each
person's lookup by the same rules the broker and the agents apply (mash.subject,
mash.context), so a bad date on the fifth person stops the case before the first lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError as ShapeError

from mash import context as context_mod
from mash import subject as subject_mod
from mash.cases.model import Case
from mash.errors import ConfigError, ValidationError
from mash.v1 import lookup_pb2
from mash.yamlfile import Location, key_lines, parse_yaml, read_yaml_text

# What mash.context calls each field, and the key a case file gives it.
_CONTEXT_KEYS = {"context.purpose": "purpose", "context.stage": "stage",
                 "context.case_reference": "reference", "context.justification": "reason",
                 "context.urgency": "urgency"}


class CaseFileError(ConfigError):
    """A case file that cannot be run: the message names the file, line and key."""


def key_of(where: Location) -> str:
    """('people', 1, 'dob') -> 'people[1].dob'."""
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


class _Located:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = key_lines(text)

    def error(self, where: Location, message: str) -> CaseFileError:
        line = next((self.lines[where[:n]] for n in range(len(where), -1, -1)
                     if where[:n] in self.lines), None)
        at = f" line {line}" if line is not None else ""
        return CaseFileError(f"{self.path}:{at}: {key_of(where)}: {message}")


def _with_more(exc: ValidationError) -> str:
    more = len(exc.problems) - 1
    return str(exc) + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def _shape_message(exc: ShapeError) -> tuple[Location, str]:
    errors = exc.errors(include_url=False)
    # A misspelt key also makes the key it meant "missing": name the typo first.
    first = min(errors, key=lambda e: e["type"] != "extra_forbidden")
    where: Location = tuple(p for p in first["loc"] if isinstance(p, str | int))
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key (a typo?)"
    elif first["type"] == "missing":
        message = "required key is missing"
    elif first["type"] == "literal_error":
        message = f"{first.get('input')!r} is not allowed: {message.lower()}"
    more = len(errors) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return where, message


def check_case(data: Any, error: Callable[[Location, str], CaseFileError],
               ) -> tuple[Case, list[lookup_pb2.LookupRequest]]:
    """A case from plain data (a case file's, or the console's form), and one checked
    LookupRequest per person; `error` places a problem (where, message) for its reader."""
    if not isinstance(data, Mapping):
        raise error((), "expected a case: reference, purpose, stage, urgency, reason and "
                        "people")
    try:
        case = Case.model_validate(data)
    except ShapeError as exc:
        where, message = _shape_message(exc)
        raise error(where, message) from None
    requests = []
    for i, person in enumerate(case.people):
        try:
            request = case.request_for(person)
            subject_mod.from_proto(request.subject)
        except ValidationError as exc:
            raise error(("people", i), _with_more(exc)) from None
        requests.append(request)
    try:
        context_mod.from_proto(requests[0].context)
    except ValidationError as exc:
        raise error((_CONTEXT_KEYS.get(exc.field, "reason"),), _with_more(exc)) from None
    return case, requests


def parse_case(text: str, path: Path) -> tuple[Case, list[lookup_pb2.LookupRequest]]:
    """The case in a file's text, and one checked LookupRequest per person, in order."""
    data: Any = parse_yaml(text, where=str(path), dates_as_text=True)
    return check_case(data, _Located(path, text).error)


def load_case(path: str | Path) -> tuple[Case, list[lookup_pb2.LookupRequest]]:
    path = Path(path)
    return parse_case(read_yaml_text(path), path)
