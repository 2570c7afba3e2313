"""Audit search criteria from what a person typed, for the CLI and the console alike.

The CLI (`mash audit search/export`) and the console's audit page take the same terms as text;
this turns them into `Criteria`, with errors that name the field as the caller shows it
(`labels`: "--dob" on the command line, "date of birth" on a form).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from mash.audit.report import Criteria, parse_when
from mash.audit.subject_hash import search_subject
from mash.errors import ValidationError

DEFAULT_LABELS = {"date_of_birth": "date of birth", "local_ids": "local identifier"}


def search_criteria(
    *, nhs_number: str = "", upn: str = "", pnc_id: str = "", ni_number: str = "",
    local_ids: Sequence[str] = (), names: Sequence[str] = (), given: str = "",
    family: str = "", date_of_birth: str = "", case_reference: str = "", requester: str = "",
    lookup_id: str = "", since: str = "", until: str = "", writer: str = "",
    labels: Mapping[str, str] | None = None,
) -> Criteria:
    """`local_ids` are ISSUER:IDENTIFIER; dates are 2012-01-02; since/until a date or an ISO
    time. ValidationError names the field by `labels` (default: in words)."""
    label = {**DEFAULT_LABELS, **(labels or {})}
    identifiers = {k: v for k, v in (("nhs_number", nhs_number), ("upn", upn),
                                     ("pnc_id", pnc_id), ("ni_number", ni_number)) if v}
    local = []
    for item in local_ids:
        issuer, sep, value = item.partition(":")
        if not sep:
            raise ValidationError(f"{label['local_ids']} {item!r}: write ISSUER:IDENTIFIER")
        local.append((issuer, value))
    born = None
    if date_of_birth:
        try:
            born = dt.date.fromisoformat(date_of_birth)
        except ValueError:
            raise ValidationError(f"{label['date_of_birth']} {date_of_birth!r} is not a date "
                                  "like 2012-01-02") from None
    subject = None
    if identifiers or local or names or given or family or born:
        subject = search_subject(identifiers, local, list(names), given, family, born)
    return Criteria(subject, case_reference, requester, lookup_id, parse_when(since),
                    parse_when(until, end=True), writer)
