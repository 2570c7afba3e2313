"""Calibration scoring every candidate and only those that can reach the floor, side by side.

``python -m bench.calibration --records 1000000`` writes
``bench/results/calibration_<N>.json``: one synthetic index of N records (``bench.scale``'s
stream, built in this process), calibrated twice on the same sample with the same seed:
first scoring every candidate of every synthetic query (``prune=False``), then only those
that can reach the index's floor (``prune=True``, what an agent does). It reports each
calibration's seconds, the thresholds and household shift each chose, and whether the two
models' thresholds, shift and estimated rates are identical (they must be: no threshold is
chosen below the floor).

The machine is shared and noisy, which is why both run one after the other in one process
rather than against an older figure.

    python -m bench.calibration [--records 1000000] [--level low] [--name NAME]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from typing import Any

from bench.results_io import record
from bench.scale import CalibrationSample
from mash.matching.calibration import calibrate
from mash.matching.index import build
from mash.matching.model import MatchModel
from mash.synth.corrupt import stream
from mash.synth.population import UniqueNumbers

COMPARED = ("estimated_false_known", "estimated_false_match", "possible_for")


def _figures(model: MatchModel, seconds: float) -> dict[str, Any]:
    p = model.provenance
    return {"seconds": round(seconds, 1), "seconds_by_step": p.get("seconds_by_step"),
            "possible": model.thresholds.possible,
            "match": model.thresholds.match, "household_shift": model.household.shift,
            **{key: p[key] for key in COMPARED}}


def run(n: int, level: str, seed: int = 42) -> dict[str, Any]:
    _, records = stream(n, level, seed, UniqueNumbers(), sample_every=0)
    sample = CalibrationSample()
    started = time.perf_counter()
    index = build(sample.passing(records))
    build_s = time.perf_counter() - started
    runs = {}
    for prune in (False, True):
        started = time.perf_counter()
        model = calibrate(index, sample.records, rows=sample.rows, seed=seed, prune=prune)
        runs["pruned" if prune else "every_candidate"] = _figures(
            model, time.perf_counter() - started)
    full, pruned = runs["every_candidate"], runs["pruned"]
    same = all(full[k] == pruned[k] for k in ("possible", "match", "household_shift",
                                               *COMPARED))
    return {"records": n, "level": level, "calibration_sample": len(sample.records),
            "build_seconds": round(build_s, 1), **runs, "identical_models": same,
            "speed_up": round(full["seconds"] / max(pruned["seconds"], 1e-9), 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--level", default="low")
    parser.add_argument("--name", default=None,
                        help="the results file's name (default calibration_<records>)")
    args = parser.parse_args(argv)
    if args.records < 2:
        parser.error("--records: at least 2")
    before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    figures = run(args.records, args.level)
    after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    path = record(args.name or f"calibration_{args.records}", {
        **figures, "machine_load": {"uptime_before": before, "uptime_after": after,
                                    "cpus": os.cpu_count()}})
    full, pruned = figures["every_candidate"], figures["pruned"]
    print(f"calibration of {args.records:,} records ({figures['calibration_sample']:,} "
          f"sampled), side by side:")
    print(f"  every candidate scored: {full['seconds']} s, possible {full['possible']}, "
          f"match {full['match']}, shift {full['household_shift']}")
    print(f"  only those that can reach the floor: {pruned['seconds']} s, possible "
          f"{pruned['possible']}, match {pruned['match']}, shift {pruned['household_shift']}")
    print(f"  x{figures['speed_up']}; identical models: {figures['identical_models']}; "
          f"{after}; written to {path}")


if __name__ == "__main__":
    main()
