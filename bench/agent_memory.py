"""What a serving agent holds in memory: its records in memory (before issue 21) against its
records in the on-disk record store (mash/agent/record_store.py), side by side in one run.

Two processes, so that each RSS is its own:

1. The load, as the agent does it: --records synthetic records read into memory, indexed,
   calibrated, written to the record store and the index saved. RSS is read with the records
   held as the old snapshot held them (``rss_mb_in_memory_records``), then with the records
   dropped and their heap returned (``rss_mb_after_dropping_records``: the agent after a
   load, mash.agent.memory).
2. A fresh process serving from the saved index and the store, as an agent restarting on
   unchanged sources would once it no longer reads them all first (``rss_mb_serving``,
   ``ready_seconds_from_saved_index``), timing matches and full searches (match, then the
   matched records read from the store).

    python -m bench.agent_memory [--records 1000000] [--queries 1000] [--level low]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.results_io import percentile, record, speed_probe
from bench.scale import CALIBRATION_EVERY, peak_rss_mb, rss_mb
from mash.agent import memory
from mash.agent.record_store import RecordStore
from mash.matching import Matcher, persist
from mash.matching.calibration import calibrate
from mash.matching.index import build
from mash.synth.corrupt import stream
from mash.synth.population import UniqueNumbers

KEY = "bench-agent-memory"


def load_phase(n: int, queries: int, level: str, workdir: Path, seed: int = 42) -> dict[str, Any]:
    """Phase 1 (in a child process): the load, with and then without the records held."""
    baseline = rss_mb()
    sampled, generated = stream(n, level, seed, UniqueNumbers(),
                                sample_every=max(1, n // queries))
    started = time.perf_counter()
    records = list(generated)  # the agent reads every record of its sources first
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    index = build(records)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    rows = list(range(0, n, CALIBRATION_EVERY))
    model = calibrate(index, [records[r] for r in rows], rows=rows)
    calibrate_s = time.perf_counter() - started
    started = time.perf_counter()
    store = RecordStore.build(path=workdir / "agent.index.records.sqlite", key=KEY,
                              records=records)
    store_s = time.perf_counter() - started
    persist.save(index, workdir / "agent.index", KEY, model)
    with (workdir / "queries.pickle").open("wb") as fh:  # the bench's own hand-over
        pickle.dump(sampled, fh)
    old = Matcher(records, index=index, model=model)  # the snapshot before issue 21
    memory.release_freed()
    with_records = rss_mb()
    del old, records, generated
    memory.release_freed()
    without = rss_mb()
    return {
        "rss_mb_before": round(baseline, 1),
        "read_seconds": round(read_s, 1), "build_seconds": round(build_s, 1),
        "calibration_seconds": round(calibrate_s, 1),
        "store_build_seconds": round(store_s, 1),
        "store_file_mb": round(store.path.stat().st_size / 2**20, 1),
        "index_file_mb": round((workdir / "agent.index").stat().st_size / 2**20, 1),
        "rss_mb_in_memory_records": round(with_records, 1),
        "rss_mb_after_dropping_records": round(without, 1),
        "peak_rss_mb_load": round(peak_rss_mb(), 1),
    }


def serve_phase(n: int, workdir: Path) -> dict[str, Any]:
    """Phase 2 (in a fresh child process): serving from the saved index and the store."""
    baseline = rss_mb()
    started = time.perf_counter()
    saved = persist.load(workdir / "agent.index", KEY, n)
    assert saved is not None and saved[1] is not None
    store = RecordStore.open(path=workdir / "agent.index.records.sqlite", key=KEY, count=n)
    assert store is not None
    matcher = Matcher(index=saved[0], model=saved[1], lookup=store)
    del saved
    ready_s = time.perf_counter() - started
    with (workdir / "queries.pickle").open("rb") as fh:
        sampled = pickle.load(fh)  # noqa: S301 - written by phase 1 in our own temp dir
    for _, q in sampled[:50]:
        matcher.search(q)  # warm, as a running agent is
    match_ms, search_ms, fetch_ms, found = [], [], [], 0
    for row, q in sampled:
        t = time.perf_counter()
        ranked, _ = matcher.rank(q)
        match_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        outcome = matcher.search(q)
        search_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        store.fetch([r.row for r in ranked])
        fetch_ms.append((time.perf_counter() - t) * 1000)
        found += any(c.row == row for c in outcome.candidates)
    memory.release_freed()
    for times in (match_ms, search_ms, fetch_ms):
        times.sort()

    def ms(times: list[float]) -> dict[str, float]:
        return {"p50": round(percentile(times, 50), 3), "p99": round(percentile(times, 99), 3)}

    return {
        "rss_mb_serving_before_load": round(baseline, 1),
        "rss_mb_serving": round(rss_mb(), 1),
        "peak_rss_mb_serving": round(peak_rss_mb(), 1),
        "ready_seconds_from_saved_index": round(ready_s, 2),
        "queries": len(sampled), "found": found,
        "match_ms": ms(match_ms), "search_with_fetch_ms": ms(search_ms),
        "fetch_ms": ms(fetch_ms),
    }


def _child(phase: str, n: int, queries: int, level: str, workdir: Path) -> dict[str, Any]:
    out = workdir / f"{phase}.json"
    subprocess.run([sys.executable, "-m", "bench.agent_memory", "--phase", phase,
                    "--records", str(n), "--queries", str(queries), "--level", level,
                    "--workdir", str(workdir)], check=True)
    figures: dict[str, Any] = json.loads(out.read_text())
    return figures


def run(n: int, queries: int, level: str) -> dict[str, Any]:
    probe = speed_probe()
    with tempfile.TemporaryDirectory(prefix="agent-memory-") as tmp:
        workdir = Path(tmp)
        load = _child("load", n, queries, level, workdir)
        serve = _child("serve", n, queries, level, workdir)
    return {"records": n, "level": level, "speed_probe_ms": probe, "load_average":
            round(os.getloadavg()[0], 2), **load, **serve}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--level", default="low")
    parser.add_argument("--phase", choices=("load", "serve"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        figures = (load_phase(args.records, args.queries, args.level, args.workdir)
                   if args.phase == "load" else serve_phase(args.records, args.workdir))
        (args.workdir / f"{args.phase}.json").write_text(json.dumps(figures))
        return
    figures = run(args.records, args.queries, args.level)
    path = record(f"agent_memory_{args.records}", figures)
    print(f"agent memory at {args.records:,} records ({args.level} corruption)")
    print(f"  records in memory (before issue 21): RSS {figures['rss_mb_in_memory_records']} MB")
    print(f"  records in the store, after the load: RSS "
          f"{figures['rss_mb_after_dropping_records']} MB (load peak "
          f"{figures['peak_rss_mb_load']} MB)")
    print(f"  serving from the saved index and the store: RSS {figures['rss_mb_serving']} MB, "
          f"ready in {figures['ready_seconds_from_saved_index']} s")
    print(f"  store {figures['store_file_mb']} MB on disk, written in "
          f"{figures['store_build_seconds']} s; index file {figures['index_file_mb']} MB")
    print(f"  match p50/p99 {figures['match_ms']['p50']}/{figures['match_ms']['p99']} ms; "
          f"search with the records read p50/p99 {figures['search_with_fetch_ms']['p50']}/"
          f"{figures['search_with_fetch_ms']['p99']} ms; the read alone p99 "
          f"{figures['fetch_ms']['p99']} ms; found {figures['found']}/{figures['queries']}")
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
