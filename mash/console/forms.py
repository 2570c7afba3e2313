"""The lookup form: what the analyst typed -> a LookupRequest, or messages per field.

The request is built by the core's `build_request` (mash/requests.py) and validated by the
same `mash.subject` and `mash.context` code the broker and agents run, so the console accepts
exactly what the federation accepts. Messages are shown next to the field they concern and
are never logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mash import context as context_mod
from mash import subject as subject_mod
from mash.client import parse_date, split_name
from mash.context import URGENCY_ENUMS
from mash.errors import ValidationError
from mash.normalise import IDENTIFIER_LABELS, IDENTIFIER_NORMALISERS, normalise_postcode
from mash.requests import SEXES, build_request
from mash.v1 import lookup_pb2, subject_pb2

IDENTIFIER_FIELDS = (("nhs", "nhs_number"), ("upn", "upn"), ("pnc", "pnc_id"),
                     ("ni", "ni_number"))
TEXT_FIELDS = ("name", "aliases", "dob", "sex", "postcodes", "nhs", "upn", "pnc", "ni", "local",
               "purpose", "stage", "case", "reason", "urgency", "approval")
SUBJECT_FIELDS = ("name", "aliases", "dob", "sex", "postcodes", "nhs", "upn", "pnc", "ni",
                  "local")
LABELS = {
    "name": "Full name", "aliases": "Other names (aliases)", "dob": "Date of birth",
    "sex": "Sex", "postcodes": "Postcodes", "nhs": "NHS number", "upn": "Unique Pupil Number",
    "pnc": "PNC ID", "ni": "National Insurance number", "local": "Agency identifiers",
    "purpose": "Purpose", "stage": "Stage", "case": "Case reference",
    "reason": "Justification", "urgency": "RAG urgency", "approval": "Stage approval",
}
MAX_APPROVAL = 8192
# Which form field a validation message from mash.subject / mash.context is about.
_PREFIXES = (
    ("subject.name", "name"), ("subject.aliases", "aliases"), ("subject has", "aliases"),
    ("subject.date_of_birth", "dob"), ("subject.sex", "sex"), ("subject.addresses", "postcodes"),
    ("context.purpose", "purpose"), ("context.stage", "stage"),
    ("context.case_reference", "case"), ("context.justification", "reason"),
    ("context.urgency", "urgency"), ("the subject is empty", "name"),
)
_VALID_CONTEXT: dict[str, Any] = {"purpose": "x", "stage": "x", "case_reference": "X",
                  "justification": "x" * context_mod.MIN_JUSTIFICATION,
                  "urgency": URGENCY_ENUMS["red"]}
_INDEX = re.compile(r"^subject\.identifiers\[(\d+)\]")


@dataclass
class LookupForm:
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    @classmethod
    def blank(cls) -> LookupForm:
        return cls({name: "" for name in TEXT_FIELDS} | {"urgency": "amber"})

    @classmethod
    def from_post(cls, data: dict[str, str]) -> LookupForm:
        return cls({name: str(data.get(name, "")).strip() for name in TEXT_FIELDS})

    def lines(self, name: str) -> list[str]:
        """A multi-value field: one per line (commas and semicolons also separate)."""
        return [p.strip() for p in re.split(r"[\n;]+", self.values.get(name, "")) if p.strip()]

    def postcodes(self) -> list[str]:
        return [p.strip() for p in re.split(r"[\n,;]+", self.values.get("postcodes", ""))
                if p.strip()]

    def about(self) -> list[tuple[str, str]]:
        """Whom the answers are about, as typed: (label, value) of each subject field given,
        for the top of the result page and the paper (never logged)."""
        out = []
        for name in SUBJECT_FIELDS:
            value = ", ".join(self.postcodes() if name == "postcodes" else self.lines(name))
            if value:
                out.append((LABELS[name], value))
        return out

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.general


def _field_checks(form: LookupForm, purposes: dict[str, list[str]] | None) -> None:
    """Check each field on its own, so that every wrong field gets its message at once."""
    v = form.values
    for name, texts in (("name", [v["name"]] if v["name"] else []),
                        ("aliases", form.lines("aliases"))):
        for text in texts:
            try:
                subject_mod.from_proto(subject_pb2.Subject(name=split_name(text)))
            except ValidationError as exc:
                form.error(name, _plain(str(exc)))
    if v["dob"]:
        try:
            parse_date(v["dob"])
        except ValidationError as exc:
            form.error("dob", _plain(str(exc)))
    if v["sex"] and v["sex"].lower() not in SEXES:
        form.error("sex", "choose F, M or X, or leave it blank")
    for postcode in form.postcodes():
        if normalise_postcode(postcode) is None:
            form.error("postcodes", f"{postcode!r} is not a UK postcode (like LS9 8AB)")
    for name, kind in IDENTIFIER_FIELDS:
        if v[name] and IDENTIFIER_NORMALISERS[kind](v[name]) is None:
            form.error(name, f"this is not a valid {IDENTIFIER_LABELS[kind]}")
    for item in form.lines("local"):
        issuer, sep, value = item.partition(":")
        if not sep or not issuer.strip() or not value.strip():
            form.error("local", f"{item!r}: write AGENCY:IDENTIFIER, e.g. police:WYP123")
    if v["urgency"].lower() not in URGENCY_ENUMS:
        form.error("urgency", "choose red, amber or green")
    if purposes is not None:
        if v["purpose"] and v["purpose"] not in purposes:
            form.error("purpose", "choose one of the purposes the agreements name")
        elif v["purpose"] and v["stage"] and v["stage"] not in purposes[v["purpose"]]:
            form.error("stage", f"{v['stage']!r} is not a stage of {v['purpose']}: choose one "
                                f"of {', '.join(purposes[v['purpose']])}")


def _plain(message: str) -> str:
    """'subject.name.family has no letters' -> 'family has no letters' for the form."""
    for prefix, _name in _PREFIXES:
        if message.startswith(prefix):
            rest = message[len(prefix):].lstrip(".: ")
            return rest[0].upper() + rest[1:] if rest else message
    return message


def _place(form: LookupForm, message: str, identifier_fields: list[str]) -> None:
    match = _INDEX.match(message)
    if match and int(match[1]) < len(identifier_fields):
        form.error(identifier_fields[int(match[1])], message[match.end():].lstrip(".: "))
        return
    for prefix, name in _PREFIXES:
        if message.startswith(prefix):
            form.error(name, _plain(message))
            return
    form.general.append(message)


def validate(form: LookupForm,
             purposes: dict[str, list[str]] | None = None) -> lookup_pb2.LookupRequest | None:
    """The request, or None with form.errors / form.general saying what to fix."""
    _field_checks(form, purposes)
    v = form.values
    identifier_fields = [n for n, _k in IDENTIFIER_FIELDS if v[n]]
    identifier_fields += ["local"] * len(form.lines("local"))
    # Each part of the context on its own (the others set to valid values), so that every
    # wrong part gets its message at once, checked by the broker's own rules.
    for name, key in (("purpose", "purpose"), ("stage", "stage"), ("case", "case_reference"),
                      ("reason", "justification")):
        try:
            context_mod.from_proto(subject_pb2.RequestContext(**{**_VALID_CONTEXT,
                                                                  key: v[name]}))
        except ValidationError as exc:
            _place(form, str(exc), identifier_fields)
    if form.errors:
        return None
    try:
        request = build_request(
            name=v["name"] or None, aliases=form.lines("aliases"), dob=v["dob"] or None,
            sex=v["sex"] or None, postcodes=form.postcodes(), nhs=v["nhs"] or None,
            upn=v["upn"] or None, pnc=v["pnc"] or None, ni=v["ni"] or None,
            local=form.lines("local"), purpose=v["purpose"], stage=v["stage"], case=v["case"],
            reason=v["reason"], urgency=v["urgency"])
    except ValidationError as exc:
        form.general.append(str(exc))
        return None
    try:
        subject_mod.from_proto(request.subject)
    except ValidationError as exc:
        _place(form, str(exc), identifier_fields)
    approval = "".join(v["approval"].split())
    if approval:
        if (len(approval) > MAX_APPROVAL or approval.count(".") != 2
                or not approval.isascii()):
            form.error("approval", "This is not a stage approval: paste the whole content of "
                                   "the file a supervisor wrote with mash approval grant.")
        request.approval = approval
    return request if form.ok else None
