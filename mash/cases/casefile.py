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

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError as ShapeError

from mash import context as context_mod
from mash import subject as subject_mod
from mash.cases.model import Case, Person
from mash.errors import ConfigError, ValidationError
from mash.v1 import lookup_pb2, subject_pb2
from mash.yamlfile import Location, key_lines, parse_yaml, read_yaml_text

# What mash.context calls each field, and the key a case file gives it.
_CONTEXT_KEYS = {"context.purpose": "purpose", "context.stage": "stage",
                 "context.case_reference": "reference", "context.justification": "reason",
                 "context.urgency": "urgency"}


class CaseFileError(ConfigError):
    """A case file that cannot be run: the message names the file, line and key (the first
    problem, and how many more); `lines` holds every problem, one line each."""

    def __init__(self, message: str, lines: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.lines: tuple[str, ...] = tuple(lines) or (message,)


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


Found = list[tuple[Location, str]]  # every problem: where in the file, and what is wrong


def _shape_problems(exc: ShapeError) -> Found:
    errors = exc.errors(include_url=False)
    # A misspelt key also makes the key it meant "missing": name the typo first.
    errors.sort(key=lambda e: e["type"] != "extra_forbidden")
    found: Found = []
    for error in errors:
        where: Location = tuple(p for p in error["loc"] if isinstance(p, str | int))
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (a typo?)"
        elif error["type"] == "missing":
            message = "required key is missing"
        elif error["type"] == "literal_error":
            message = f"{error.get('input')!r} is not allowed: {message.lower()}"
        found.append((where, message))
    return found


# A subject field (mash.subject's path) -> the key of a person in the case file.
_PERSON_KEYS = {"subject.aliases": "aliases", "subject.date_of_birth": "dob",
                "subject.sex": "sex", "subject.addresses": "postcodes"}
_IDENTIFIER_KEYS = {subject_pb2.IDENTIFIER_KIND_NHS_NUMBER: "nhs",
                    subject_pb2.IDENTIFIER_KIND_UPN: "upn",
                    subject_pb2.IDENTIFIER_KIND_PNC_ID: "pnc",
                    subject_pb2.IDENTIFIER_KIND_NI_NUMBER: "ni"}
_PATH = re.compile(r"(?:subject|context)(?:\.[a-z_]+|\[\d+\])*")


def _without_path(field: str, message: str) -> str:
    """"subject.date_of_birth is in the future" -> "is in the future" (the key says which)."""
    match = _PATH.match(message)
    if match and field and match.group(0) == field:
        return message[match.end():].lstrip(" :")
    return message


def _person_key(field: str, person: Person, subject: subject_pb2.Subject) -> Location:
    """Where in a person's entry a subject field came from (() when no one key)."""
    index = re.fullmatch(r"subject\.identifiers\[(\d+)\].*", field)
    if index:
        i = int(index.group(1))
        ids = subject.identifiers
        if i >= len(ids):
            return ()
        local = subject_pb2.IDENTIFIER_KIND_LOCAL
        if ids[i].kind == local:
            return ("local", sum(1 for x in ids[:i] if x.kind == local))
        return (_IDENTIFIER_KEYS[ids[i].kind],) if ids[i].kind in _IDENTIFIER_KEYS else ()
    if field.startswith("subject.name"):
        if field.endswith(".given") and person.given:
            return ("given",)
        if field.endswith(".family") and person.family:
            return ("family",)
        return ("name",) if person.name else ("given",) if person.given else ("family",)
    item = re.fullmatch(r"(subject\.[a-z_]+)(?:\[(\d+)\])?.*", field)
    if item and item.group(1) in _PERSON_KEYS:
        key = _PERSON_KEYS[item.group(1)]
        return (key, int(item.group(2))) if item.group(2) is not None else (key,)
    return ()


def _raise_all(found: Found, error: Callable[[Location, str], CaseFileError]) -> NoReturn:
    """The first problem (and how many more) as the error; every one of them in `lines`."""
    more = len(found) - 1
    where, message = found[0]
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    first = error(where, message)
    raise CaseFileError(str(first), [str(error(w, m)) for w, m in found])


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
        _raise_all(_shape_problems(exc), error)
    requests = []
    found: Found = []
    for i, person in enumerate(case.people):
        try:
            request = case.request_for(person)
        except ValidationError as exc:  # a shape request_for checks itself (a date)
            found += [(("people", i), p.message) for p in exc.problems]
            continue
        try:
            subject_mod.from_proto(request.subject)
        except ValidationError as exc:
            for p in exc.problems:
                key = _person_key(p.field, person, request.subject)
                found.append((("people", i, *key), _without_path(p.field, p.message) if key
                              else p.message))
        requests.append(request)
    if requests:
        try:
            context_mod.from_proto(requests[0].context)
        except ValidationError as exc:
            for p in exc.problems:
                name = _CONTEXT_KEYS.get(p.field)
                found.append(((name or "reason",), _without_path(p.field, p.message) if name
                              else p.message))
    if found:
        _raise_all(found, error)
    return case, requests


def parse_case(text: str, path: Path) -> tuple[Case, list[lookup_pb2.LookupRequest]]:
    """The case in a file's text, and one checked LookupRequest per person, in order."""
    data: Any = parse_yaml(text, where=str(path), dates_as_text=True)
    return check_case(data, _Located(path, text).error)


def load_case(path: str | Path) -> tuple[Case, list[lookup_pb2.LookupRequest]]:
    path = Path(path)
    return parse_case(read_yaml_text(path), path)
