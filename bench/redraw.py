"""How much the calibration's own randomness moves the accuracy figures.

Every index calibrates on synthetic queries drawn from a seed of its own records' values
(mash.matching.calibration), so one run of ``bench.accuracy`` is one draw: a change that
moves recall by fewer people than a redraw does is not shown by it. Here each split of
``bench.accuracy`` (the same data sets, seeds and sizes) is calibrated under several
seeds: draw 0 is the agent's own, the others seeds made from it (`mash_peer.redrawn_seed`).
For each draw it reports what ``bench.accuracy`` does (recall at the calibration-half
threshold and as shipped, false known for strangers and household members, summed over the
seeds) with each split's household shift and possible threshold, and for each data set the
mean, the lowest, the highest and the standard deviation over the draws.

    python -m bench.redraw [--datasets generator-low,generator-medium,generator-high]
                           [--seeds 1,2,3] [--draws 6] [--records 20000] [--queries 2000]
                           [--name calibration_redraw]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from bench import mash_peer
from bench.accuracy import (
    TARGET_FALSE_KNOWN,
    as_shipped,
    at_threshold,
    choose_threshold,
    make_split,
)
from bench.results_io import record

DATASETS = ("generator-low", "generator-medium", "generator-high")
COUNTS = ("found", "stranger_known", "household_known")


def spread(values: list[int]) -> dict[str, Any]:
    return {"mean": round(statistics.fmean(values), 1), "min": min(values),
            "max": max(values),
            "sd": round(statistics.stdev(values), 1) if len(values) > 1 else 0.0}


def run(datasets: tuple[str, ...], seeds: tuple[int, ...], draws: int, records: int,
        queries: int) -> dict[str, Any]:
    started = time.monotonic()
    out: dict[str, Any] = {}
    for name in datasets:
        per_draw: list[dict[str, Any]] = [
            {"draw": d, "calibration_half": dict.fromkeys(COUNTS, 0),
             "as_shipped": dict.fromkeys(COUNTS, 0), "splits": []} for d in range(draws)]
        held = 0
        for seed in seeds:
            split = make_split(name, seed, records, queries)
            for doc in per_draw:
                result = mash_peer.run(split, draw=doc["draw"])
                rows = result["queries"]
                half = at_threshold(rows, choose_threshold(rows, TARGET_FALSE_KNOWN))
                shipped = as_shipped(rows)
                for key in COUNTS:
                    doc["calibration_half"][key] += half[key]
                    doc["as_shipped"][key] += shipped[key]
                doc["splits"].append({
                    "seed": seed, "shift": result["calibration"]["household"]["shift"],
                    "possible": result["thresholds"]["possible"]})
            held += half["held"]
            print(f"  {name} seed {seed}: {draws} draws done", flush=True)
        out[name] = {"held": held, "draws": per_draw, **{
            f"{kind}_found": spread([d[kind]["found"] for d in per_draw])
            for kind in ("calibration_half", "as_shipped")}}
    return {"datasets": out, "seeds": list(seeds), "draws": draws,
            "generator_records": records, "generator_queries_per_kind": queries,
            "seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--draws", type=int, default=6)
    parser.add_argument("--records", type=int, default=20_000, help="generator records")
    parser.add_argument("--queries", type=int, default=2_000,
                        help="generator queries of each kind")
    parser.add_argument("--name", default="calibration_redraw")
    args = parser.parse_args(argv)
    if args.draws < 1:
        parser.error("--draws must be at least 1")
    result = run(tuple(d for d in args.datasets.split(",") if d),
                 tuple(int(s) for s in args.seeds.split(",")), args.draws, args.records,
                 args.queries)
    path = record(args.name, result)
    for name, doc in result["datasets"].items():
        print(f"{name} ({doc['held']} held people asked about, {args.draws} draws):")
        for kind in ("calibration_half", "as_shipped"):
            s = doc[f"{kind}_found"]
            print(f"  {kind:17} found mean {s['mean']}, {s['min']}-{s['max']}, sd {s['sd']}; "
                  "by draw " + ", ".join(str(d[kind]["found"]) for d in doc["draws"]))
        print("  false known as shipped (strangers, household) by draw: " + ", ".join(
            f"{d['as_shipped']['stranger_known']}/{d['as_shipped']['household_known']}"
            for d in doc["draws"]))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
