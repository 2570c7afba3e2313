"""Rendering lookup answers for people (rich) and machines (JSON)."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mash.answers import (
    CONFIDENCE_LABELS,
    NOT_CHECKED_LABELS,
    STATE_LABELS,
    STATE_TEXT,
    from_timestamp,
)
from mash.v1 import answer_pb2, lookup_pb2

R = answer_pb2
STYLES = {
    R.ANSWER_STATE_KNOWN: "bold green",
    R.ANSWER_STATE_NOT_KNOWN: "bold blue",
    R.ANSWER_STATE_WITHHELD: "bold yellow",
    R.ANSWER_STATE_NOT_CHECKED: "bold white on red",
}


def as_json(message: Message) -> str:
    return json.dumps(MessageToDict(message, preserving_proto_field_name=True),
                      indent=2, sort_keys=True)


_INT64 = frozenset({FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64,
                    FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_FIXED64,
                    FieldDescriptor.TYPE_SFIXED64})


def as_document(message: Message) -> dict[str, object]:
    """A message as a program wants it: every field present (an offline agency has
    `"online": false`, not no key) and 64-bit integers as JSON numbers, not the strings of
    protobuf's JSON mapping (which guards JavaScript's 53-bit numbers; counts here are far
    below that)."""
    doc = MessageToDict(message, preserving_proto_field_name=True,
                        always_print_fields_with_no_presence=True)
    _numbers(doc, message.DESCRIPTOR)
    return doc


def _numbers(doc: dict[str, object], descriptor: Any) -> None:
    for field in descriptor.fields:
        value = doc.get(field.name)
        if value is None:
            continue
        items = value if isinstance(value, list) else [value]
        if field.type in _INT64:
            converted = [int(v) if isinstance(v, str) else v for v in items]
            doc[field.name] = converted if isinstance(value, list) else converted[0]
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            for item in items:
                if isinstance(item, dict):
                    _numbers(item, field.message_type)


def _when(ts: object) -> str:
    value = from_timestamp(ts)  # type: ignore[arg-type]
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "unknown"


def _how(match: answer_pb2.MatchResult) -> str:
    """Score and levels are sent only where the agreement releases the fields they describe
    (mash/agent/describe.py): otherwise the band alone."""
    parts = [f"score {match.score:.1f}"] if match.score else []
    if match.matched_on:
        parts.append(f"agreed on {', '.join(match.matched_on)}")
    return f"({'; '.join(parts)})" if parts else "(band only: the agreement releases no more)"


def describe(answer: answer_pb2.AgencyAnswer) -> Text:
    out = Text()
    if answer.state == R.ANSWER_STATE_NOT_CHECKED:
        out.append(f"{NOT_CHECKED_LABELS[answer.not_checked_reason]}: ", style="bold")
        out.append(answer.detail or "")
        out.append("\nNot searched: this is NOT the same as not known.", style="italic")
        return out
    if answer.state == R.ANSWER_STATE_KNOWN:
        for i, match in enumerate(answer.matches):
            if i:
                out.append("\n")
            out.append(f"{CONFIDENCE_LABELS.get(match.confidence, '?')} ", style="bold")
            out.append(_how(match))
            for field in match.released:
                suffix = "" if field.transform == "keep" else f" [{field.transform}]"
                out.append(f"\n  {field.name}: {field.value}{suffix}")
            by_reason: dict[str, list[str]] = {}
            for withheld in match.withheld:
                by_reason.setdefault(withheld.reason, []).append(withheld.name)
            for reason, names in by_reason.items():
                out.append(f"\n  withheld ({reason}): {', '.join(names)}", style="dim")
        if answer.detail:
            out.append(f"\n{answer.detail}")
    elif answer.state == R.ANSWER_STATE_WITHHELD:
        out.append(answer.detail)
    elif answer.state == R.ANSWER_STATE_NOT_KNOWN:
        s = answer.searched
        out.append("Searched, nothing found. ")
        parts = []
        if s.identifiers_used:
            parts.append(f"identifiers: {', '.join(s.identifiers_used)}")
        if s.name_variants:
            parts.append(f"names: {', '.join(s.name_variants)}")
        if s.date_of_birth_rules:
            parts.append(f"dates of birth: {'; '.join(s.date_of_birth_rules)}")
        else:
            tolerance = f"DOB tolerance {s.date_of_birth_tolerance_days} days"
            if s.date_of_birth_day_month_swap:
                tolerance += " and day/month swaps"
            parts.append(tolerance)
        if s.postcodes:
            parts.append(f"postcodes: {', '.join(s.postcodes)}")
        parts.append("sources: " + ", ".join(
            f"{src.name} ({src.record_count} records, as at {_when(src.as_at)})"
            for src in s.sources))
        out.append("; ".join(parts))
    if answer.contact_route and answer.state != R.ANSWER_STATE_NOT_CHECKED:
        out.append(f"\nContact: {answer.contact_route}", style="cyan")
    for warning in answer.warnings:
        out.append(f"\nWarning: {warning}", style="yellow")
    if answer.HasField("data_as_at"):
        out.append(f"\nData as at {_when(answer.data_as_at)}", style="dim")
    return out


def print_lookup(response: lookup_pb2.LookupResponse, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"Lookup {response.lookup_id[:12]} for {response.requester} "
                        f"({response.requester_agency})", show_lines=True, expand=True)
    table.add_column("Agency", max_width=24)
    table.add_column("Answer", no_wrap=True)
    table.add_column("Detail", ratio=1, min_width=36)
    for answer in response.answers:
        table.add_row(
            Text(answer.agency_name or answer.agency_id),
            Text(STATE_TEXT.get(answer.state, "?"), style=STYLES.get(answer.state, "")),
            describe(answer),
        )
    console.print(table)


def summary_line(response: lookup_pb2.LookupResponse) -> str:
    counts: dict[str, int] = {}
    for answer in response.answers:
        label = STATE_LABELS.get(answer.state, "?")
        counts[label] = counts.get(label, 0) + 1
    return ", ".join(f"{n} {label}" for label, n in sorted(counts.items()))
