"""Building a LookupRequest from what an analyst typed: one place for the CLI's `mash lookup`,
`mash case run`, the console's form and the demo.

Only the shape is checked here (a date is a calendar date, a sex is F/M/X, a local id names
its issuer); `mash.subject.from_proto` and `mash.context.from_proto` apply the full rules, at
the caller, the broker and every agent alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from mash.client import identifier, parse_date, split_name
from mash.context import URGENCY_ENUMS
from mash.errors import ValidationError
from mash.v1 import lookup_pb2, subject_pb2

SEXES = {"f": subject_pb2.SEX_FEMALE, "m": subject_pb2.SEX_MALE, "x": subject_pb2.SEX_OTHER}
IDENTIFIER_OPTIONS = (("nhs", "nhs_number"), ("upn", "upn"), ("pnc", "pnc_id"),
                      ("ni", "ni_number"))


def build_subject(
    *, name: str | None = None, given: str | None = None, family: str | None = None,
    aliases: Sequence[str] = (), dob: str | None = None, sex: str | None = None,
    postcodes: Sequence[str] = (), nhs: str | None = None, upn: str | None = None,
    pnc: str | None = None, ni: str | None = None, local: Sequence[str] = (),
) -> subject_pb2.Subject:
    """The person asked about. `local` items are AGENCY:IDENTIFIER."""
    subject = subject_pb2.Subject()
    if name:
        subject.name.CopyFrom(split_name(name))
    if given:
        subject.name.given = given
    if family:
        subject.name.family = family
    for alias in aliases:
        subject.aliases.append(split_name(alias))
    if dob:
        subject.date_of_birth.CopyFrom(parse_date(dob))
    if sex:
        if sex.lower() not in SEXES:
            raise ValidationError(f"sex {sex!r} is not F, M or X")
        subject.sex = SEXES[sex.lower()]
    for postcode in postcodes:
        subject.addresses.add(postcode=postcode)
    for (_, kind), value in zip(IDENTIFIER_OPTIONS, (nhs, upn, pnc, ni), strict=True):
        if value:
            subject.identifiers.append(identifier(kind, value))
    for item in local:
        issuer, sep, value = item.partition(":")
        if not sep:
            raise ValidationError(f"local id {item!r} must be AGENCY:IDENTIFIER")
        subject.identifiers.append(identifier("local_id", value, issuer))
    return subject


def build_context(*, purpose: str, stage: str, case: str, reason: str,
                  urgency: str) -> subject_pb2.RequestContext:
    """Why the analyst asks; urgency is red, amber or green."""
    if urgency.lower() not in URGENCY_ENUMS:
        raise ValidationError(f"urgency {urgency!r} is not red, amber or green")
    return subject_pb2.RequestContext(
        purpose=purpose, stage=stage, case_reference=case, justification=reason,
        urgency=URGENCY_ENUMS[urgency.lower()])


def build_request(
    *, name: str | None = None, given: str | None = None, family: str | None = None,
    aliases: Sequence[str] = (), dob: str | None = None, sex: str | None = None,
    postcodes: Sequence[str] = (), nhs: str | None = None, upn: str | None = None,
    pnc: str | None = None, ni: str | None = None, local: Sequence[str] = (), purpose: str,
    stage: str, case: str, reason: str, urgency: str, agencies: Sequence[str] = (),
) -> lookup_pb2.LookupRequest:
    """One lookup: the subject, the context and (optionally) the agencies to ask."""
    subject = build_subject(name=name, given=given, family=family, aliases=aliases, dob=dob,
                            sex=sex, postcodes=postcodes, nhs=nhs, upn=upn, pnc=pnc, ni=ni,
                            local=local)
    context = build_context(purpose=purpose, stage=stage, case=case, reason=reason,
                            urgency=urgency)
    return lookup_pb2.LookupRequest(subject=subject, context=context, agencies=list(agencies))
