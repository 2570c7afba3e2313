"""The subject of a lookup: validated and normalised from the wire message.

The broker validates to refuse absurd requests early; every agent validates again because
the data owner does not trust what reaches it. Error messages name the field and the fix;
they go back to the analyst who typed the data and are never logged.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from mash.errors import Problems, ValidationError
from mash.normalise import (
    IDENTIFIER_LABELS,
    IDENTIFIER_NORMALISERS,
    name_tokens,
    normalise_postcode,
    postcode_in_text,
)
from mash.v1 import subject_pb2

MAX_NAME_PART = 100
MAX_ALIASES = 10
MAX_ADDRESSES = 10
MAX_ADDRESS_LINES = 6
MAX_ADDRESS_LINE = 200
MAX_IDENTIFIERS = 10
OLDEST_YEAR = 1900

SEX_CODES = {
    subject_pb2.SEX_UNSPECIFIED: "",
    subject_pb2.SEX_FEMALE: "F",
    subject_pb2.SEX_MALE: "M",
    subject_pb2.SEX_OTHER: "X",
}
IDENTIFIER_KINDS = {
    subject_pb2.IDENTIFIER_KIND_NHS_NUMBER: "nhs_number",
    subject_pb2.IDENTIFIER_KIND_UPN: "upn",
    subject_pb2.IDENTIFIER_KIND_PNC_ID: "pnc_id",
    subject_pb2.IDENTIFIER_KIND_NI_NUMBER: "ni_number",
    subject_pb2.IDENTIFIER_KIND_LOCAL: "local_id",
}
IDENTIFIER_ENUMS = {v: k for k, v in IDENTIFIER_KINDS.items()}


@dataclass(frozen=True)
class Name:
    given: str  # normalised: folded, no titles or punctuation; may hold several words
    middle: str
    family: str

    @property
    def full(self) -> str:
        return " ".join(p for p in (self.given, self.middle, self.family) if p)


@dataclass(frozen=True)
class SubjectQuery:
    """A validated, normalised subject: what the matcher searches for."""

    names: tuple[Name, ...] = ()  # the primary name first, then aliases
    date_of_birth: dt.date | None = None
    sex: str = ""
    postcodes: tuple[str, ...] = ()
    identifiers: dict[str, str] = field(default_factory=dict)  # kind -> normalised value
    local_ids: tuple[tuple[str, str], ...] = ()  # (issuing agency, value)
    addresses: tuple[str, ...] = ()  # each address's lines joined by ", " (as typed)

    @property
    def has_name(self) -> bool:
        return any(n.given and n.family for n in self.names)

    @property
    def has_family_name(self) -> bool:
        return any(n.family for n in self.names)

    def present(self) -> set[str]:
        """Which kinds of evidence the subject carries, for the minimum-identifier rules."""
        have = set(self.identifiers)
        if self.local_ids:
            have.add("local_id")
        if self.has_name:
            have.add("name")
        if any(n.given for n in self.names):
            have.add("given_name")
        if self.has_family_name:
            have.add("family_name")
        if self.date_of_birth:
            have.add("date_of_birth")
        if self.postcodes:
            have.add("postcode")
        if self.addresses:
            have.add("address")
        if self.sex:
            have.add("sex")
        return have


def clean_text(value: str, label: str, limit: int) -> str:
    if len(value) > limit:
        raise ValidationError(f"{label} is longer than {limit} characters", field=label)
    # isprintable() is False for every refused category (and for separators other than the
    # space, which are allowed): only then is each character looked at.
    if not value.isprintable() and any(
            unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in value):
        raise ValidationError(f"{label} contains control or invisible characters", field=label)
    return value.strip()


def _name(msg: subject_pb2.PersonName, label: str) -> Name | None:
    parts = {}
    found = Problems()
    for part in ("given", "middle", "family"):
        where = f"{label}.{part}"
        raw = found.check(clean_text, getattr(msg, part), where, MAX_NAME_PART)
        if raw is None:
            continue
        normalised = " ".join(name_tokens(raw, family=part == "family"))
        if raw and not normalised:
            found.add(where, f"{where} has no letters in it")
        parts[part] = normalised
    found.raise_any()
    if not any(parts.values()):
        return None
    if not parts["family"] and not parts["given"]:
        raise ValidationError(f"{label} has only a middle name: give a given or family name",
                              field=label)
    return Name(**parts)


def parse_date(msg: subject_pb2.Date, label: str, today: dt.date | None = None) -> dt.date | None:
    if not (msg.year or msg.month or msg.day):
        return None
    today = today or dt.date.today()
    try:
        value = dt.date(msg.year, msg.month, msg.day)
    except ValueError:
        raise ValidationError(
            f"{label} {msg.year:04d}-{msg.month:02d}-{msg.day:02d} is not a calendar date",
            field=label) from None
    if value.year < OLDEST_YEAR:
        raise ValidationError(f"{label} is before {OLDEST_YEAR}: check the year", field=label)
    if value > today:
        raise ValidationError(f"{label} is in the future", field=label)
    return value


def _address(msg: subject_pb2.Address, label: str) -> tuple[str, str | None]:
    """(the address lines as one text, the normalised postcode or None)."""
    if len(msg.lines) > MAX_ADDRESS_LINES:
        raise ValidationError(f"{label} has more than {MAX_ADDRESS_LINES} lines", field=label)
    found = Problems()
    lines = [found.check(clean_text, line, f"{label}.lines[{j}]", MAX_ADDRESS_LINE)
             for j, line in enumerate(msg.lines)]
    where = f"{label}.postcode"
    raw = found.check(clean_text, msg.postcode, where, 16)
    found.raise_any()
    text = ", ".join(line for line in lines if line)
    if not raw and text:
        raw = postcode_in_text(text) or ""  # a postcode written into the address
    if not raw:
        return text, None
    postcode = normalise_postcode(raw)
    if postcode is None:
        raise ValidationError(f"{where} {raw!r} is not a UK postcode (e.g. LS1 4AB)",
                              field=where)
    return text, postcode


_IDENTIFIER_HINTS = {"nhs_number": " (ten digits with a valid check digit)",
                     "upn": " (a check letter and twelve characters)",
                     "pnc_id": " (e.g. 09/1234567A with its check letter)"}


def _identifier(msg: subject_pb2.Identifier, label: str) -> tuple[str, str, str]:
    """(kind, normalised value, issuer: "" but for a local identifier)."""
    kind = IDENTIFIER_KINDS.get(msg.kind)
    if kind is None:
        raise ValidationError(f"{label} has no kind: say which identifier it is", field=label)
    raw = clean_text(msg.value, label, 64)
    value = IDENTIFIER_NORMALISERS[kind](raw)
    if value is None:
        hint = _IDENTIFIER_HINTS.get(kind, "")
        raise ValidationError(f"{label}: {IDENTIFIER_LABELS[kind]} is not valid{hint}",
                              field=label)
    if kind != "local_id":
        return kind, value, ""
    issuer = clean_text(msg.issuer, f"{label}.issuer", 40)
    if not issuer:
        raise ValidationError(f"{label}: a local identifier needs its issuing agency",
                              field=label)
    return kind, value, issuer


def _too_many(found: Problems, items: Sequence[object], limit: int, what: str,
              field_path: str) -> bool:
    if len(items) <= limit:
        return False
    found.add(field_path, f"subject has {len(items)} {what}: at most {limit}")
    return True


def from_proto(msg: subject_pb2.Subject, today: dt.date | None = None) -> SubjectQuery:
    """Validate and normalise. Every invalid field is found before anything is refused:
    the ValidationError lists them all (``problems``), each with its field path, and its
    message is the first one's."""
    found = Problems()
    names: list[Name] = []
    primary = found.check(_name, msg.name, "subject.name")
    if primary:
        names.append(primary)
    if not _too_many(found, msg.aliases, MAX_ALIASES, "aliases", "subject.aliases"):
        for i, alias in enumerate(msg.aliases):
            parsed = found.check(_name, alias, f"subject.aliases[{i}]")
            if parsed and parsed not in names:
                names.append(parsed)

    dob = found.check(parse_date, msg.date_of_birth, "subject.date_of_birth", today)

    if msg.sex not in SEX_CODES:
        found.add("subject.sex", "subject.sex is not a known value")

    postcodes: list[str] = []
    addresses: list[str] = []
    if not _too_many(found, msg.addresses, MAX_ADDRESSES, "addresses", "subject.addresses"):
        for i, address in enumerate(msg.addresses):
            parsed_address = found.check(_address, address, f"subject.addresses[{i}]")
            if parsed_address is None:
                continue
            text, postcode = parsed_address
            if text and text not in addresses:
                addresses.append(text)
            if postcode is not None and postcode not in postcodes:
                postcodes.append(postcode)

    identifiers: dict[str, str] = {}
    local_ids: list[tuple[str, str]] = []
    if not _too_many(found, msg.identifiers, MAX_IDENTIFIERS, "identifiers",
                     "subject.identifiers"):
        for i, ident in enumerate(msg.identifiers):
            parsed_id = found.check(_identifier, ident, f"subject.identifiers[{i}]")
            if parsed_id is None:
                continue
            kind, value, issuer = parsed_id
            if kind == "local_id":
                local_ids.append((issuer, value))
            elif kind in identifiers and identifiers[kind] != value:
                found.add("subject.identifiers",
                          f"subject has two different {IDENTIFIER_LABELS[kind]}s")
            else:
                identifiers[kind] = value
    found.raise_any()

    subject = SubjectQuery(
        names=tuple(names),
        date_of_birth=dob,
        sex=SEX_CODES[msg.sex],
        postcodes=tuple(postcodes),
        identifiers=identifiers,
        local_ids=tuple(local_ids),
        addresses=tuple(addresses),
    )
    # Whether what is given is enough to search is the agent's evidence rule (a date of
    # birth and an address can single out a baby not yet named); only nothing at all to
    # search by is refused here.
    if not (subject.names or subject.identifiers or subject.local_ids
            or subject.date_of_birth or subject.postcodes or subject.addresses):
        raise ValidationError(
            "the subject is empty: give a name, a date of birth, an address or postcode, or "
            "an identifier such as an NHS number", field="subject")
    return subject


# Evidence an agency may require before it searches (agent config `search.require_any_of`).
EVIDENCE = frozenset(
    {"name", "given_name", "family_name", "date_of_birth", "postcode", "address", "sex",
     "local_id",
     *IDENTIFIER_NORMALISERS}
)
DEFAULT_MINIMUM: tuple[frozenset[str], ...] = (
    frozenset({"nhs_number"}),
    frozenset({"upn"}),
    frozenset({"pnc_id"}),
    frozenset({"ni_number"}),
    frozenset({"local_id"}),
    frozenset({"name", "date_of_birth"}),
    frozenset({"name", "postcode"}),
)


def describe_minimum(rules: tuple[frozenset[str], ...]) -> str:
    return "; or ".join(" + ".join(sorted(r)).replace("_", " ") for r in rules)


def meets_minimum(subject: SubjectQuery, rules: tuple[frozenset[str], ...]) -> bool:
    return evidence_meets(subject.present(), rules)


def evidence_meets(have: set[str], rules: tuple[frozenset[str], ...]) -> bool:
    """Whether these kinds of evidence satisfy one of an agency's minimum rules (a blind
    lookup's first round knows only the kinds, not the subject)."""
    return any(rule <= have for rule in rules)
