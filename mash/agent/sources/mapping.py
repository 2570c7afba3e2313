"""Mapping an agency's own columns onto canonical person fields.

Agency IT writes the mapping once in agent.yaml. A row that cannot be mapped is counted
and reported by row number and reason, never by content.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mash.config import Invalid
from mash.normalise import (
    IDENTIFIER_NORMALISERS,
    name_tokens,
    normalise_postcode,
    postcode_in_text,
)
from mash.records import CANONICAL_FIELDS, PersonRecord
from mash.subject import Name

DEFAULT_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%Y%m%d")
DEFAULT_SEX_VALUES = {
    "f": "F", "female": "F", "girl": "F", "woman": "F",
    "m": "M", "male": "M", "boy": "M", "man": "M",
    "x": "X", "other": "X", "indeterminate": "X", "i": "X",
}
LIST_SEPARATOR = ";"
# Canonical fields that may be mapped to several columns, joined in order with ", " (an
# address held as line 1, line 2, town, postcode).
MULTI_COLUMN_FIELDS = ("address",)


class RowError(Exception):
    """A row cannot become a record; the message names the field, never the value."""


@dataclass
class ColumnMapping:
    columns: dict[str, str]  # canonical field -> source column (the first, when several)
    fields: dict[str, str]  # agency field -> source column
    date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS
    sex_values: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SEX_VALUES))
    # canonical field -> every column it is read from, in order (MULTI_COLUMN_FIELDS only)
    joined: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # agency fields holding dates: read in date_formats and kept as YYYY-MM-DD, so that a
    # date transform (month, year, age_band) and `keep` see one format
    date_fields: tuple[str, ...] = ()

    @classmethod
    def of(cls, raw: Mapping[Any, Any], fields: Mapping[Any, Any],
           formats: tuple[str, ...] = DEFAULT_DATE_FORMATS, date_fields: tuple[str, ...] = (),
           sex: Mapping[Any, Any] | None = None) -> ColumnMapping:
        """A source's `mapping`, `fields`, `date_formats`, `date_fields` and `sex_values`
        settings, checked (Invalid names the key)."""
        columns: dict[str, str] = {}
        joined: dict[str, tuple[str, ...]] = {}
        for canonical, column in raw.items():
            if canonical not in CANONICAL_FIELDS:
                raise Invalid(
                    f"not a canonical field (known: {', '.join(CANONICAL_FIELDS)}); map agency "
                    "fields under 'fields'", key=f"mapping.{canonical}")
            if isinstance(column, list) and canonical in MULTI_COLUMN_FIELDS:
                if not column or not all(isinstance(c, str) and c for c in column):
                    raise Invalid("expected a column name or a list of column names",
                                  key=f"mapping.{canonical}")
                joined[canonical] = tuple(column)
                column = column[0]
            if not isinstance(column, str) or not column:
                raise Invalid("expected a column name" + (
                    " (or a list of them)" if canonical in MULTI_COLUMN_FIELDS else ""),
                    key=f"mapping.{canonical}")
            columns[canonical] = column
        if "record_id" not in columns:
            raise Invalid("every source must map a record id column", key="mapping.record_id")
        if not ({"family_name", "nhs_number", "upn", "pnc_id", "ni_number"} & columns.keys()):
            raise Invalid("map at least a family name or an identifier column", key="mapping")
        for name, column in fields.items():
            if name in CANONICAL_FIELDS:
                raise Invalid("is a canonical field: map it under 'mapping'", key=f"fields.{name}")
            if not isinstance(column, str) or not column:
                raise Invalid("expected a column name", key=f"fields.{name}")
        for i, name in enumerate(date_fields):
            if name not in fields:
                raise Invalid(f"{name!r} is not an agency field under 'fields' (date_of_birth "
                              "is always read as a date)", key=f"date_fields[{i}]")
        sex_values = dict(DEFAULT_SEX_VALUES)
        for raw_value, code in (sex or {}).items():
            if code not in ("F", "M", "X", ""):
                raise Invalid("map to F, M, X or ''", key=f"sex_values.{raw_value}")
            sex_values[str(raw_value).strip().lower()] = code
        return cls(columns, {str(k): v for k, v in fields.items()}, formats, sex_values,
                   joined, date_fields)

    @property
    def source_columns(self) -> list[str]:
        joined = {c for cols in self.joined.values() for c in cols}
        return sorted(set(self.columns.values()) | set(self.fields.values()) | joined)

    @property
    def field_names(self) -> set[str]:
        """Every field an agreement may name for this source."""
        names = set(self.columns) | set(self.fields)
        names.discard("record_id")
        return names

    @property
    def dates(self) -> frozenset[str]:
        """The fields this source holds as dates (YYYY-MM-DD once loaded)."""
        return frozenset(self.date_fields) | ({"date_of_birth"} & self.columns.keys())

    def parse_date(self, text: str, name: str = "date_of_birth") -> dt.date:
        for fmt in self.date_formats:
            try:
                fast = _fixed_width_date(text, fmt)
                return fast if fast is not None else dt.datetime.strptime(text, fmt).date()
            except ValueError:
                continue
        raise RowError(f"{name} is not in a configured date format")


# Formats read without strptime (a tenth of its time, millions of times in a large load)
# when the text has their fixed width: (year, month, day) slices and the separators' places.
_FIXED_WIDTH = {
    "%Y-%m-%d": ((0, 4), (5, 7), (8, 10), {4: "-", 7: "-"}),
    "%d/%m/%Y": ((6, 10), (3, 5), (0, 2), {2: "/", 5: "/"}),
    "%d-%m-%Y": ((6, 10), (3, 5), (0, 2), {2: "-", 5: "-"}),
}


def _fixed_width_date(text: str, fmt: str) -> dt.date | None:
    """The date of ``text`` in ``fmt`` when it is one of _FIXED_WIDTH's in full width
    (ASCII digits and its separators: what strptime reads the same); ValueError for a date
    that does not exist, as strptime; None to leave it to strptime."""
    shape = _FIXED_WIDTH.get(fmt)
    if shape is None or len(text) != 10 or not text.isascii():
        return None
    (y0, y1), (m0, m1), (d0, d1), separators = shape
    if any(text[i] != sep for i, sep in separators.items()):
        return None
    year, month, day = text[y0:y1], text[m0:m1], text[d0:d1]
    if not (year.isdigit() and month.isdigit() and day.isdigit()):
        return None
    return dt.date(int(year), int(month), int(day))


def _text(value: Any) -> str:
    if type(value) is str:  # every value of a CSV extract: the check first
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def _name(given: str, middle: str, family: str) -> Name | None:
    parts = [" ".join(name_tokens(p, family=i == 2)) for i, p in enumerate((given, middle, family))]
    if not parts[0] and not parts[2]:
        return None
    return Name(*parts)


def _alias(text: str) -> Name | None:
    """'Given Family' or 'Family, Given'."""
    if "," in text:
        family, _, given = text.partition(",")
    else:
        words = text.split()
        given, family = " ".join(words[:-1]), (words[-1] if words else "")
    return _name(given, "", family)


def map_row(row: Mapping[str, Any], mapping: ColumnMapping, source: str,
            warnings: Counter[str]) -> PersonRecord:
    """One source row -> a PersonRecord. Raises RowError when the row is unusable."""
    col = mapping.columns
    texts: dict[str, str] = {}  # each canonical field read once, though asked for twice

    def get(canonical: str) -> str:
        text = texts.get(canonical)
        if text is None:
            several = mapping.joined.get(canonical)
            if several:
                text = ", ".join(t for t in (_text(row.get(c)) for c in several) if t)
            else:
                column = col.get(canonical)
                text = _text(row.get(column)) if column else ""
            texts[canonical] = text
        return text

    record_id = get("record_id")
    if not record_id:
        raise RowError("record_id is empty")
    values: dict[str, str] = {}
    for canonical in col:
        text = get(canonical)
        if text:
            values[canonical] = text
    for name, column in mapping.fields.items():
        text = _text(row.get(column))
        if text:
            values[name] = text
    for name in mapping.date_fields:
        if name in values and not isinstance(row.get(mapping.fields[name]), dt.date):
            try:
                values[name] = mapping.parse_date(values[name], name).isoformat()
            except RowError:  # kept as written: a date transform withholds it, with a reason
                warnings[f"{name} not in a configured date format"] += 1

    names: list[Name] = []
    primary = _name(get("given_name"), get("middle_names"), get("family_name"))
    if primary:
        names.append(primary)
    for alias_text in get("aliases").split(LIST_SEPARATOR):
        alias = _alias(alias_text.strip()) if alias_text.strip() else None
        if alias and alias not in names:
            names.append(alias)

    dob = None
    if dob_text := get("date_of_birth"):
        raw_dob = row.get(col["date_of_birth"])
        if isinstance(raw_dob, dt.date):
            dob = raw_dob if not isinstance(raw_dob, dt.datetime) else raw_dob.date()
        else:
            try:
                dob = mapping.parse_date(dob_text)
            except RowError:
                warnings["date_of_birth unparseable"] += 1
        if dob is not None:
            values["date_of_birth"] = dob.isoformat()

    sex = ""
    if sex_text := get("sex"):
        sex = mapping.sex_values.get(sex_text.lower(), "")
        if not sex:
            warnings["sex value not mapped"] += 1

    addresses: list[str] = []
    for text in [get("address"), *get("previous_addresses").split(LIST_SEPARATOR)]:
        text = " ".join(text.split())
        if text and text not in addresses:
            addresses.append(text)
    postcodes: list[str] = []
    for text in [get("postcode"), *get("previous_postcodes").split(LIST_SEPARATOR)]:
        if not text.strip():
            continue
        postcode = normalise_postcode(text)
        if postcode is None:
            warnings["postcode not a UK postcode"] += 1
        elif postcode not in postcodes:
            postcodes.append(postcode)
    for address in addresses:  # a postcode written into an address line counts too
        postcode = postcode_in_text(address)
        if postcode and postcode not in postcodes:
            postcodes.append(postcode)

    identifiers: dict[str, str] = {}
    for kind, normalise in IDENTIFIER_NORMALISERS.items():
        if kind == "local_id":
            continue
        text = get(kind)
        if not text:
            continue
        value = normalise(text)
        if value is None:
            warnings[f"{kind} invalid"] += 1
        else:
            identifiers[kind] = value

    if not names and not identifiers:
        raise RowError("no name and no identifier")
    return PersonRecord(
        record_id=record_id,
        source=source,
        names=tuple(names),
        date_of_birth=dob,
        sex=sex,
        postcodes=tuple(postcodes),
        identifiers=identifiers,
        values=values,
        addresses=tuple(addresses),
    )
