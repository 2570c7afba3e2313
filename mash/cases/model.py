"""What a case is: the context every lookup in it shares, and the people in the household."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from mash.requests import build_request
from mash.v1 import lookup_pb2

MAX_PEOPLE = 30
# Relationship to the child the referral is about; `child` is that child.
Relationship = Literal[
    "child", "sibling", "half_sibling", "step_sibling", "mother", "father", "parent",
    "step_parent", "parent_partner", "carer", "grandparent", "relative", "household_member",
    "other",
]
RELATIONSHIPS: tuple[str, ...] = get_args(Relationship)


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


Text = Annotated[str, Field(min_length=1, max_length=200)]
Texts = Annotated[list[Text], BeforeValidator(_one_or_many), Field(max_length=20)]


class Person(BaseModel):
    """One member of the household, as the analyst knows them."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    relationship: Relationship
    name: Text | None = None
    given: Text | None = None
    family: Text | None = None
    aliases: Texts = []
    dob: Text | None = None  # 2014-05-17 or 17/05/2014 (the case file reads dates as text)
    sex: Literal["F", "M", "X", "f", "m", "x"] | None = None
    postcodes: Texts = []
    nhs: Text | None = None
    upn: Text | None = None
    pnc: Text | None = None
    ni: Text | None = None
    local: Texts = []

    def label(self) -> str:
        """How the family picture names the person (for the analyst, never logged)."""
        parts = self.name or " ".join(p for p in (self.given, self.family) if p)
        return parts or "(identifiers only)"


class Case(BaseModel):
    """A case: the context of every lookup in it, and its people."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    reference: Text
    purpose: Text
    stage: Text
    urgency: Literal["red", "amber", "green"]
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    agencies: Texts = []
    people: Annotated[list[Person], Field(min_length=1, max_length=MAX_PEOPLE)]

    @model_validator(mode="after")
    def _one_child(self) -> Case:
        children = sum(1 for p in self.people if p.relationship == "child")
        if children != 1:
            raise ValueError(f"people: exactly one person must have relationship: child (the "
                             f"child the referral is about); found {children}")
        return self

    def request_for(self, person: Person) -> lookup_pb2.LookupRequest:
        """The lookup for one person, under the case's context."""
        return build_request(
            name=person.name, given=person.given, family=person.family,
            aliases=person.aliases, dob=person.dob, sex=person.sex,
            postcodes=person.postcodes, nhs=person.nhs, upn=person.upn, pnc=person.pnc,
            ni=person.ni, local=person.local, purpose=self.purpose, stage=self.stage,
            case=self.reference, reason=self.reason, urgency=self.urgency,
            agencies=self.agencies)
