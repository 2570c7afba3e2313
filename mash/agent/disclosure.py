"""What an agent may say, and which fields of a matched record it releases.

`DisclosurePolicy` is the seam between the agent and whatever decides disclosure. Two
decisions: `gate` (may the agency even say whether it knows the person, for this requester,
role, purpose and stage?) and `disclose` (for one matched record: which fields, which
transform, and why each withheld field is withheld).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from mash.records import PersonRecord

Level = Literal["fields", "existence"]


@dataclass(frozen=True)
class Requester:
    agency: str
    role: str
    purpose: str
    stage: str


@dataclass(frozen=True)
class Gate:
    allowed: bool
    agreement_id: str = ""
    # When not allowed: "no_agreement" or "policy_error", and a sentence for the analyst.
    refusal: Literal["", "no_agreement", "policy_error"] = ""
    reason: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Released:
    name: str
    value: str | None
    transform: str


@dataclass(frozen=True)
class Withheld:
    name: str
    reason: str


@dataclass
class RecordDisclosure:
    # "existence": the agency may say only that it holds something (answer WITHHELD).
    level: Level
    agreement_id: str
    released: list[Released] = field(default_factory=list)
    withheld: list[Withheld] = field(default_factory=list)
    reason: str = ""


class PolicyError(Exception):
    """The policy could not be evaluated: share nothing, answer NOT_CHECKED(POLICY_ERROR)."""


class DisclosurePolicy(Protocol):
    @property
    def revision(self) -> str: ...

    def gate(self, requester: Requester) -> Gate: ...

    def disclose(self, requester: Requester, record: PersonRecord) -> RecordDisclosure: ...
