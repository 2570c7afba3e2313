"""The request context: why an analyst is asking. Validated at the broker and at each agent."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mash.errors import ValidationError
from mash.subject import clean_text
from mash.v1 import subject_pb2

URGENCIES = {
    subject_pb2.URGENCY_RED: "red",
    subject_pb2.URGENCY_AMBER: "amber",
    subject_pb2.URGENCY_GREEN: "green",
}
URGENCY_ENUMS = {v: k for k, v in URGENCIES.items()}
# How long an analyst has to act on a lookup, by RAG rating (hours): the board report's
# deadlines (`mash report --rag-hours`); the console reads its own from console.yaml.
DEFAULT_RAG_HOURS = {"red": 4.0, "amber": 24.0, "green": 72.0}
_TOKEN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_CASE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_.:-]{0,63}$")
MIN_JUSTIFICATION = 10
MAX_JUSTIFICATION = 2000


@dataclass(frozen=True)
class LookupContext:
    purpose: str
    stage: str
    case_reference: str
    justification: str
    urgency: str  # red | amber | green


def from_proto(msg: subject_pb2.RequestContext) -> LookupContext:
    purpose = msg.purpose.strip()
    stage = msg.stage.strip()
    if not purpose:
        raise ValidationError("context.purpose is missing (e.g. child_safeguarding)")
    if not _TOKEN.match(purpose):
        raise ValidationError("context.purpose must be a short lower-case code such as "
                              "child_safeguarding")
    if not stage:
        raise ValidationError("context.stage is missing (e.g. triage, research, s47)")
    if not _TOKEN.match(stage):
        raise ValidationError("context.stage must be a short lower-case code such as triage")
    case_reference = clean_text(msg.case_reference, "context.case_reference", 64)
    if not case_reference:
        raise ValidationError("context.case_reference is missing: every lookup belongs to a case")
    if not _CASE_REF.match(case_reference):
        raise ValidationError("context.case_reference may hold letters, digits and / _ . : - only")
    justification = clean_text(msg.justification, "context.justification", MAX_JUSTIFICATION)
    if len(justification) < MIN_JUSTIFICATION:
        raise ValidationError(
            f"context.justification must say why, in at least {MIN_JUSTIFICATION} characters")
    urgency = URGENCIES.get(msg.urgency)
    if urgency is None:
        raise ValidationError("context.urgency is missing: red, amber or green")
    return LookupContext(purpose, stage, case_reference, justification, urgency)
