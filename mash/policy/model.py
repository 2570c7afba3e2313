"""The decisions the policy makes, as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Level = Literal["fields", "existence"]


@dataclass(frozen=True)
class Requester:
    agency: str
    role: str
    purpose: str
    stage: str


@dataclass(frozen=True)
class StageRules:
    """What the stage releases, decided once per query by the policy."""

    release: dict[str, tuple[str, dict[str, object]]]  # field -> (transform, params)
    dropped: frozenset[str]
    not_released_reason: str
    dropped_reason: str


@dataclass(frozen=True)
class Gate:
    """May the agency even say whether it knows the person?"""

    allowed: bool
    agreement_id: str = ""
    answer: str = "known"  # "known" or "existence" (when allowed)
    # When not allowed: "no_agreement" or "policy_error", and a sentence for the analyst.
    refusal: Literal["", "no_agreement", "policy_error"] = ""
    reason: str = ""
    warnings: tuple[str, ...] = ()
    rules: StageRules | None = None  # when allowed


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
