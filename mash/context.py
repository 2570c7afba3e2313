"""The request context: why an analyst is asking. Validated at the broker and at each agent."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mash.errors import Problems, ValidationError
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


def _code(value: str, label: str, example: str, shape: str) -> str:
    if not value:
        raise ValidationError(f"{label} is missing (e.g. {example})", field=label)
    if not _TOKEN.match(value):
        raise ValidationError(f"{label} must be a short lower-case code such as {shape}",
                              field=label)
    return value


def _case_reference(raw: str) -> str:
    label = "context.case_reference"
    value = clean_text(raw, label, 64)
    if not value:
        raise ValidationError(f"{label} is missing: every lookup belongs to a case", field=label)
    if not _CASE_REF.match(value):
        raise ValidationError(f"{label} may hold letters, digits and / _ . : - only",
                              field=label)
    return value


def _justification(raw: str) -> str:
    label = "context.justification"
    value = clean_text(raw, label, MAX_JUSTIFICATION)
    if len(value) < MIN_JUSTIFICATION:
        raise ValidationError(
            f"{label} must say why, in at least {MIN_JUSTIFICATION} characters", field=label)
    return value


def from_proto(msg: subject_pb2.RequestContext) -> LookupContext:
    """Validate the context; the ValidationError lists every invalid field (``problems``)."""
    found = Problems()
    purpose = found.check(_code, msg.purpose.strip(), "context.purpose", "child_safeguarding",
                          "child_safeguarding")
    stage = found.check(_code, msg.stage.strip(), "context.stage", "triage, research, s47",
                        "triage")
    case_reference = found.check(_case_reference, msg.case_reference)
    justification = found.check(_justification, msg.justification)
    urgency = URGENCIES.get(msg.urgency)
    if urgency is None:
        found.add("context.urgency", "context.urgency is missing: red, amber or green")
    found.raise_any()
    if (purpose is None or stage is None or case_reference is None or justification is None
            or urgency is None):  # a check returns None only with a problem: never here
        raise ValidationError("context is invalid", field="context")
    return LookupContext(purpose, stage, case_reference, justification, urgency)
