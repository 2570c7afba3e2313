"""Whether a load of a source is complete enough to answer from.

An agent that answered from a half-written, truncated or empty extract would say NOT_KNOWN
about people the agency holds. So each load is compared with the source's bounds (agent.yaml:
`min_records`, `max_shrink_percent`, `max_rejected_percent`) and with the last load that was
accepted; a load outside them is refused, and the agent keeps answering from the last good
one (or, with none, answers NOT_CHECKED: data unavailable).

The last good load's counts live in memory and, when the agent saves its index, in a small
JSON file beside it, so that a restart on a truncated extract is refused too.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mash.agent.sources import LoadedSource, Problem, SourceConfig
from mash.files import write_atomic
from mash.logs import get_logger

log = get_logger(__name__)
# Values whose loss en masse makes people unfindable: checked as rejected rows are.
SEARCH_FIELDS = ("name", "date_of_birth", "postcode", "nhs_number", "upn", "pnc_id",
                 "ni_number")
# A field held by fewer records than this in the last good load is not compared (a handful
# of NHS numbers in a police extract would make one more or less look like a collapse).
FIELD_FLOOR = 20
ACCEPT_HINT = ("if the smaller extract is expected, restart the agent once with `mash agent "
               "serve --accept-shrink`, or raise max_shrink_percent for this source")


@dataclass(frozen=True)
class Refusal:
    """Why a load was not used: a stable code and words an agency's IT can act on (source
    names, counts and settings; never a value read from the records)."""

    problem: Problem
    detail: str
    source: str = ""


@dataclass
class Counts:
    """A source's counts in a good load: what the next load is compared with."""

    records: int
    rows: int
    present: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, loaded: LoadedSource) -> Counts:
        return cls(loaded.record_count, loaded.rows_read, dict(loaded.present))


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0%"


def check(cfg: SourceConfig, loaded: LoadedSource, last: Counts | None,
          accept_shrink: bool = False) -> Refusal | None:
    """The reason to refuse this load of `cfg`, or None to use it. `last`: the source's
    counts in the last good load (None: none known). `accept_shrink`: the operator accepts
    a load smaller than the last good one (the other bounds still apply)."""
    name, records, rows = cfg.name, loaded.record_count, loaded.rows_read

    def refuse(problem: Problem, detail: str) -> Refusal:
        return Refusal(problem, f"source {name}: {detail}", name)

    if records < cfg.min_records:
        return refuse(Problem.TOO_FEW_RECORDS,
                      f"{records} records ({rows} rows), fewer than min_records "
                      f"({cfg.min_records}): the extract is empty, header-only or cut short")
    rejected = sum(loaded.rows_rejected.values())
    if rows and rejected * 100 > rows * cfg.max_rejected_percent:
        reason, _ = loaded.rows_rejected.most_common(1)[0]
        return refuse(Problem.ROWS_REJECTED,
                      f"{rejected} of {rows} rows rejected ({_percent(rejected, rows)}, above "
                      f"max_rejected_percent {cfg.max_rejected_percent:g}), most for "
                      f"'{reason}': is a column renamed, moved or emptied?")
    for reason, count in loaded.warnings.most_common():
        field_name = reason.split(" ", 1)[0]
        if field_name in SEARCH_FIELDS and rows and count * 100 > rows * cfg.max_rejected_percent:
            return refuse(Problem.VALUES_UNREADABLE,
                          f"'{reason}' in {count} of {rows} rows ({_percent(count, rows)}, above "
                          f"max_rejected_percent {cfg.max_rejected_percent:g}): has the column's "
                          "format changed (date_formats)?")
    if last is None or accept_shrink:
        return None
    allowed = 1 - cfg.max_shrink_percent / 100
    if records < last.records * allowed:
        return refuse(Problem.SHRANK,
                      f"{records} records, {_percent(last.records - records, last.records)} "
                      f"fewer than the last good load ({last.records}), above "
                      f"max_shrink_percent ({cfg.max_shrink_percent:g}): a truncated or partial "
                      f"extract? {ACCEPT_HINT}")
    for field_name in SEARCH_FIELDS:
        before = last.present.get(field_name, 0)
        now = loaded.present.get(field_name, 0)
        if before >= FIELD_FLOOR and now < before * allowed:
            return refuse(Problem.VALUES_LOST,
                          f"{now} records have a {field_name}, against {before} in the last good "
                          f"load ({_percent(before - now, before)} fewer, above "
                          f"max_shrink_percent {cfg.max_shrink_percent:g}): is the column "
                          f"renamed or emptied? {ACCEPT_HINT}")
    return None


def check_all(sources: list[SourceConfig], loaded: list[LoadedSource],
              last: dict[str, Counts], accept_shrink: bool = False) -> Refusal | None:
    """The first source's reason to refuse the whole load, or None."""
    for cfg, one in zip(sources, loaded, strict=True):
        refusal = check(cfg, one, last.get(cfg.name), accept_shrink)
        if refusal is not None:
            return refusal
    return None


def baseline_path(index_path: Path) -> Path:
    """Where the last good load's counts are kept, beside the saved index."""
    return index_path.with_name(index_path.name + ".last-good.json")


def read_baseline(path: Path) -> dict[str, Counts]:
    """The counts of the last good load by source ({} when none was saved)."""
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return {name: Counts(int(c["records"]), int(c["rows"]),
                             {str(k): int(v) for k, v in c.get("present", {}).items()})
                for name, c in doc["sources"].items()}
    except Exception as exc:  # unreadable: compare with nothing rather than crash
        log.warning("last_good_counts_unreadable", file=path.name, error=type(exc).__name__)
        return {}


def write_baseline(path: Path, loaded: list[LoadedSource], loaded_at: dt.datetime) -> None:
    doc: dict[str, Any] = {"loaded_at": loaded_at.isoformat(),
                           "sources": {one.name: asdict(Counts.of(one)) for one in loaded}}
    try:
        write_atomic(path, json.dumps(doc, indent=1, sort_keys=True).encode())
    except OSError as exc:
        log.warning("last_good_counts_not_saved", file=path.name, error=type(exc).__name__)
