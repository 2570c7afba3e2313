"""The MASH matcher on a query-mode split, the way an agency runs it.

Records go through the agent's own CSV source (``load_source``: the mapping, the
normalisation, the rejected rows), queries through the same subject validation as a real
lookup (``subject.from_proto``), the index and its calibration are built as ``mash agent
index`` builds them, and the minimum-evidence rule is the agent's default. Per query it
reports the best score of any candidate and of the true record, whether the top candidate
is the true record, and what the agent would have answered with its own thresholds.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.splits import RECORD_FIELDS, Split
from mash import subject as subject_mod
from mash.agent.sources import SourceConfig, load_source
from mash.agent.sources.mapping import ColumnMapping
from mash.errors import ValidationError
from mash.matching import Matcher
from mash.matching.calibration import calibrate, default_seed
from mash.matching.engine import bands
from mash.matching.index import MatchIndex, build
from mash.v1 import subject_pb2

IDENTIFIERS = {"nhs_number": subject_pb2.IDENTIFIER_KIND_NHS_NUMBER,
                "upn": subject_pb2.IDENTIFIER_KIND_UPN,
                "pnc_id": subject_pb2.IDENTIFIER_KIND_PNC_ID}
_SEX = {"F": subject_pb2.SEX_FEMALE, "M": subject_pb2.SEX_MALE, "X": subject_pb2.SEX_OTHER}


def subject_message(q: dict[str, str]) -> subject_pb2.Subject:
    """A query as the analyst's client would send it."""
    msg = subject_pb2.Subject()
    msg.name.given, msg.name.family = q.get("given_name", ""), q.get("family_name", "")
    for alias in filter(None, (a.strip() for a in q.get("aliases", "").split(";"))):
        words = alias.split()
        msg.aliases.add(given=" ".join(words[:-1]), family=words[-1] if words else "")
    if q.get("date_of_birth"):
        y, m, d = (int(p) for p in q["date_of_birth"].split("-"))
        msg.date_of_birth.year, msg.date_of_birth.month, msg.date_of_birth.day = y, m, d
    if q.get("sex") in _SEX:
        msg.sex = _SEX[q["sex"]]
    if q.get("postcode") or q.get("address"):
        address = msg.addresses.add(postcode=q.get("postcode", ""))
        if q.get("address"):
            address.lines.append(q["address"])
    for kind, enum in IDENTIFIERS.items():
        if q.get(kind):
            msg.identifiers.add(kind=enum, value=q[kind])
    return msg


def load_records(split: Split, workdir: Path) -> tuple[list[Any], dict[str, int]]:
    """The split's records through the agent's CSV source; (records, rows rejected)."""
    path = split.write_records_csv(workdir / f"{split.name}.csv")
    present = {k for r in split.records for k, v in r.items() if v}
    columns = {k: k for k in RECORD_FIELDS if k in present and k != "person_id"}
    mapping = ColumnMapping(columns=columns, fields={"person_id": "person_id"})
    loaded = load_source(SourceConfig(name=split.name, type="csv", mapping=mapping,
                                      path=path))
    return loaded.records, dict(loaded.rows_rejected)


def redrawn_seed(index: MatchIndex, draw: int) -> int:
    """The calibration seed of redraw ``draw`` of an index: draw 0 is the seed an agent
    uses (from the records' values), every other one a different seed made from it."""
    seed = default_seed(index)
    if not draw:
        return seed
    return int.from_bytes(hashlib.blake2b(f"{seed}:{draw}".encode(), digest_size=8).digest(),
                          "little")


def run(split: Split, *, draw: int = 0) -> dict[str, Any]:
    """``draw``: calibrate with redraw ``draw``'s seed (`redrawn_seed`; 0: as an agent does)."""
    with tempfile.TemporaryDirectory() as tmp:
        records, rejected = load_records(split, Path(tmp))
    started = time.process_time()
    if draw:
        index = build(records)
        matcher = Matcher(records, index=index, model=calibrate(
            index, records, seed=redrawn_seed(index, draw)))
    else:
        matcher = Matcher(records)
    index_seconds = time.process_time() - started
    person = np.array([r.values.get("person_id", "") for r in records], dtype=object)
    out = []
    seconds = 0.0
    for q in split.queries:
        row: dict[str, Any] = {"query_id": q["query_id"], "kind": q["kind"],
                               "half": q["half"], "best_any": None, "best_true": None,
                               "top_is_true": False, "known": False, "true_known": False,
                               "refused": ""}
        out.append(row)
        try:
            subject = subject_mod.from_proto(subject_message(q))
        except ValidationError as exc:
            row["refused"] = f"invalid: {exc}"
            continue
        if not matcher.reach(subject).searchable:
            row["refused"] = "too few identifiers"
            continue
        t0 = time.perf_counter()
        scored = matcher.scored(subject)
        band = bands(scored, matcher.model)
        seconds += time.perf_counter() - t0
        if not len(scored.rows):
            continue
        mine = person[scored.rows] == q["person_id"]
        best = int(np.argmax(scored.total))
        row["best_any"] = float(scored.total[best])
        if mine.any():
            row["best_true"] = float(scored.total[mine].max())
        row["top_is_true"] = bool(mine[best])
        row["known"] = bool((band > 0).any())
        row["true_known"] = bool((band[mine] > 0).any())
    return {"queries": out, "records": len(records), "rows_rejected": rejected,
            "index_seconds": round(index_seconds, 3),
            "seconds_per_query": seconds / max(1, len(split.queries)),
            "thresholds": {"possible": matcher.model.thresholds.possible,
                           "match": matcher.model.thresholds.match},
            "calibration": matcher.model.provenance}


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """What the agent as configured answered: recall and false known per kind."""
    rows = result["queries"]
    by: dict[str, dict[str, int]] = {}
    for r in rows:
        s = by.setdefault(r["kind"], {"n": 0, "known": 0, "true_known": 0, "refused": 0})
        s["n"] += 1
        s["known"] += r["known"]
        s["true_known"] += r["true_known"]
        s["refused"] += bool(r["refused"])
    return by


if __name__ == "__main__":
    import sys

    from bench.splits import splits

    for split in splits(sys.argv[1:] or ["febrl1", "febrl2", "febrl3"]):
        res = run(split)
        s = summary(res)
        held = s.get("held", {"n": 0, "true_known": 0, "refused": 0})
        print(f"{split.name}: {res['records']} records, thresholds {res['thresholds']}, "
              f"recall {held['true_known']}/{held['n']} (refused {held['refused']}), "
              + ", ".join(f"{k} known {v['known']}/{v['n']}" for k, v in s.items()
                          if k != "held")
              + f", {res['seconds_per_query'] * 1000:.2f} ms/query"
              )
