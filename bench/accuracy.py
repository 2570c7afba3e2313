"""Matching accuracy on synthetic agency records at several corruption levels.

Thresholds are calibrated on one seed at the "medium" level (queries for people in the
records AND for people who are not), then every level is evaluated on a different seed with
those same thresholds: recall on people who are in the records, and the false-known rate on
people who are not (any candidate returned, possible or match). Records and queries are
corrupted independently (see mash/synth/corrupt.py for the levels).

    python -m bench.accuracy [--records 50000] [--queries 2000] [--quick]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict

import numpy as np

from bench.results_io import record
from mash.matching import Matcher
from mash.matching.calibration import choose, collect, evaluate
from mash.matching.weights import Thresholds
from mash.synth.corrupt import LEVELS, scenario

CALIBRATION_LEVEL = "medium"
TARGET_RECALL = 0.99
TARGET_FALSE_KNOWN = 0.001


def calibrate(n: int, queries: int) -> tuple[Thresholds, dict]:
    # five times as many strangers: a 0.1% false-known target needs thousands to place it
    cal = scenario(n, queries, CALIBRATION_LEVEL, seed=101, n_strangers=5 * queries)
    collected = collect(Matcher(cal.records), cal)
    thresholds = choose(collected, n, TARGET_FALSE_KNOWN)
    true_best = np.array(collected.true_best)
    strangers = np.array(collected.stranger_best)
    strangers = strangers[np.isfinite(strangers)]
    figures = {
        "level": CALIBRATION_LEVEL, "seed": 101, "records": n, "queries_in_records": queries,
        "queries_not_in_records": 5 * queries,
        "target_false_known_rate": TARGET_FALSE_KNOWN,
        "thresholds": asdict(thresholds),
        "true_record_blocked_rate": round(float(np.isfinite(true_best).mean()), 4),
        "true_best_score_quantiles": {f"p{q}": round(float(np.percentile(
            true_best[np.isfinite(true_best)], q)), 2) for q in (1, 5, 50)},
        "stranger_best_score_quantiles": {f"p{q}": round(float(np.percentile(strangers, q)),
                                                          2) for q in (50, 99, 99.9)}
        if len(strangers) else {},
    }
    return thresholds, figures


def run(n: int, queries: int, suffix: str = "") -> dict:
    started = time.monotonic()
    thresholds, calibration = calibrate(n, queries)
    record("matching_calibration" + suffix, calibration)
    levels = {}
    for name in LEVELS:
        sc = scenario(n, queries, name, seed=202, n_strangers=2 * queries)
        matcher = Matcher(sc.records)
        matcher.weights.thresholds = thresholds
        levels[name] = {k: round(v, 4) if isinstance(v, float) else v
                        for k, v in evaluate(matcher, sc).items()}
        levels[name]["meets_target"] = (levels[name]["recall"] >= TARGET_RECALL and
                                        levels[name]["false_known_rate"] <= TARGET_FALSE_KNOWN)
        levels[name]["corruption"] = asdict(LEVELS[name])
    return {"records": n, "queries_in_records_per_level": queries,
            "queries_not_in_records_per_level": 2 * queries, "evaluation_seed": 202,
            "thresholds": asdict(thresholds), "calibration": calibration,
            "targets": {"recall": TARGET_RECALL, "false_known_rate": TARGET_FALSE_KNOWN},
            "levels": levels, "seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--quick", action="store_true", help="10,000 records, 500 queries")
    args = parser.parse_args(argv)
    n, queries = (10_000, 500) if args.quick else (args.records, args.queries)
    suffix = "_quick" if args.quick else ""
    figures = run(n, queries, suffix)
    path = record("matching_accuracy" + suffix, figures)
    t = figures["thresholds"]
    print(f"matching accuracy: {n} records, {queries} queries for people held and "
          f"{2 * queries} for people not held, per level; thresholds match {t['match']}, possible "
          f"{t['possible']} (calibrated at {CALIBRATION_LEVEL}, seed 101)")
    print(f"{'level':8} {'recall':>8} {'as match':>9} {'false known':>12} {'other person':>13}")
    for name, f in figures["levels"].items():
        print(f"{name:8} {f['recall']:8.2%} {f['recall_as_match']:9.2%} "
              f"{f['false_known_rate']:12.2%} {f['other_person_also_returned_rate']:13.2%}"
              f"{'  meets target' if f['meets_target'] else ''}")
    print(f"target: recall >= {TARGET_RECALL:.0%} with false-known <= {TARGET_FALSE_KNOWN:.1%};"
          f" written to {path}")


if __name__ == "__main__":
    main()
