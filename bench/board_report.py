"""The board report over a large audit trail: `python -m bench.board_report [--lookups N]`.

Writes N lookups (a "lookup" and an "answers" entry each, eight agencies per answer set, real
entries through AuditLog into SQLite, in batches) over 30 days, then times `compute` for the
whole window and records the memory it took (tracemalloc peak of the report alone). Writes
bench/results/board_report.json (or board_report_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.results_io import record, speed_probe
from mash.audit.build import answers_entry, lookup_entry
from mash.audit.checkpoint import Signer
from mash.audit.keys import write_keys
from mash.audit.log import AuditLog
from mash.audit.store import open_store
from mash.board.figures import Window, compute
from mash.context import LookupContext
from mash.identity.tokens import Analyst
from mash.v1 import answer_pb2

AGENCIES = ["police", "health", "csc", "education", "probation", "housing", "asc", "ambulance"]
STATES = [answer_pb2.ANSWER_STATE_KNOWN, answer_pb2.ANSWER_STATE_NOT_KNOWN,
          answer_pb2.ANSWER_STATE_NOT_KNOWN, answer_pb2.ANSWER_STATE_WITHHELD]
START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
ANALYST = Analyst("a.analyst", "mash", "analyst", "mash-1", "idp", "t", START)


def answers_for(n: int) -> list[answer_pb2.AgencyAnswer]:
    out = []
    for i, agency in enumerate(AGENCIES):
        if (n + i) % 17 == 0:
            out.append(answer_pb2.AgencyAnswer(
                agency_id=agency, state=answer_pb2.ANSWER_STATE_NOT_CHECKED,
                not_checked_reason=answer_pb2.NOT_CHECKED_REASON_TIMED_OUT))
        else:
            out.append(answer_pb2.AgencyAnswer(agency_id=agency, state=STATES[(n + i) % 4]))
    return out


def fill(url: str, signer: Signer, lookups: int) -> None:
    clock = {"now": START}
    step = dt.timedelta(days=30) / lookups
    with AuditLog(open_store(url), "broker", signer, checkpoint_every=1000,
                  clock=lambda: clock["now"]) as log:
        batch = []
        for n in range(lookups):
            clock["now"] = START + n * step
            ctx = LookupContext("child_safeguarding", ("triage", "research", "s47")[n % 3],
                                f"CASE-{n}", "bench lookup for the board report",
                                ("red", "amber", "green")[n % 3])
            batch.append(lookup_entry(lookup_id=f"L{n}", analyst=ANALYST, context=ctx,
                                      subject=(), asked=AGENCIES))
            batch.append(answers_entry(lookup_id=f"L{n}", analyst=ANALYST, context=ctx,
                                       subject=(), answers=answers_for(n),
                                       answer_ms={a: 20 + (n % 50) for a in AGENCIES},
                                       elapsed_ms=60))
            if len(batch) >= 1000:
                log.append_many(batch)
                batch = []
        if batch:
            log.append_many(batch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.board_report")
    parser.add_argument("--lookups", type=int, default=50_000)
    parser.add_argument("--quick", action="store_true", help="5,000 lookups")
    args = parser.parse_args(argv)
    lookups = 5_000 if args.quick else args.lookups
    with tempfile.TemporaryDirectory() as tmp:
        keys = write_keys(Path(tmp) / "keys")
        url = f"sqlite:///{Path(tmp) / 'audit.db'}"
        started = time.perf_counter()
        fill(url, Signer.from_file(keys.signing_key), lookups)
        filled = time.perf_counter() - started
        window = Window(since=START, until=START + dt.timedelta(days=31), agencies={
            a: a for a in AGENCIES})
        with open_store(url) as store:
            started = time.perf_counter()
            report = compute(store, window)
            seconds = time.perf_counter() - started
            tracemalloc.start()  # a second run for memory: tracing slows the first one down
            compute(store, window)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    assert report["lookups"]["total"] == lookups, report["lookups"]
    figures = {"store": "sqlite", "lookups": lookups, "entries": 2 * lookups,
               "fill_seconds": round(filled, 2), "report_seconds": round(seconds, 2),
               "report_peak_mb": round(peak / 1e6, 1),
               "entries_per_second": round(2 * lookups / seconds),
               "speed_probe_ms": speed_probe()}
    path = record("board_report_quick" if args.quick else "board_report", figures)
    print(path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
