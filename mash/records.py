"""The canonical person record every agency source is mapped onto."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from mash.subject import Name

# Canonical person fields a source mapping may fill. Anything else an agency maps is an
# agency field (e.g. incident_summary), released only as its agreement allows.
CANONICAL_FIELDS = (
    "record_id",
    "given_name",
    "middle_names",
    "family_name",
    "aliases",
    "date_of_birth",
    "sex",
    "postcode",
    "previous_postcodes",
    "address",
    "previous_addresses",
    "nhs_number",
    "upn",
    "pnc_id",
    "ni_number",
)


@dataclass(slots=True)
class PersonRecord:
    record_id: str
    source: str
    names: tuple[Name, ...]  # normalised; the recorded name first, then aliases
    date_of_birth: dt.date | None
    sex: str  # F, M, X or ""
    postcodes: tuple[str, ...]  # normalised; the current postcode first
    identifiers: dict[str, str]  # kind -> normalised value
    # Every releasable value as the agency holds it, by field name: canonical fields
    # (given_name, date_of_birth, postcode, ...) and agency fields (incident_summary, ...).
    values: dict[str, str] = field(default_factory=dict)
    # The addresses as the agency wrote them, the current one first (matching parses them:
    # mash.matching.address), up to MAX_ADDRESSES of mash.matching.index
    addresses: tuple[str, ...] = ()
