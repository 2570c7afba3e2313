"""Matching accuracy in query mode: the MASH matcher beside Splink, on the same splits.

For every data set and seed (bench/splits.py): an agency holds half of the people; every
query is labelled held, stranger or household member; queries are split by person into a
calibration and an evaluation half. Two matchers answer every query:

- MASH, as an agent runs it: records through its CSV source, queries through the lookup's
  validation, the minimum-evidence rule, an index calibrated on its own records (no labels);
- Splink 5 (DuckDB), trained unlabelled as its documentation recommends (bench/splink_peer.py,
  in an environment of its own: it is never a runtime dependency).

Reported for each, on the evaluation half, at a threshold chosen on the calibration half
(the lowest at which no more than the target share of strangers, and of household members,
come back known): recall (the held person's record among the candidates), false known for
strangers and for household members (counts and 95% Wilson intervals), the right-record rate
(the held person's record is the top candidate) and time per query. For MASH also what the
agent answers with its own calibrated thresholds, the product as shipped.

    python -m bench.accuracy [--datasets generator-low,...,febrl3] [--seeds 1,2,3]
                             [--records 20000] [--queries 2000] [--no-splink] [--quick]

FEBRL4 is held out and never read.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import mash_peer
from bench.results_io import record
from bench.splits import Split, febrl
from mash.matching.calibration import wilson

TARGET_RECALL = 0.99
TARGET_FALSE_KNOWN = 0.001
DATASETS = ("generator-low", "generator-medium", "generator-high", "febrl1", "febrl2",
            "febrl3")
TARGET_DATASETS = ("generator-low", "generator-medium", "febrl1", "febrl2", "febrl3")
NON_HELD = ("stranger", "household")


def make_split(name: str, seed: int, records: int, queries: int) -> Split:
    if name.startswith("febrl"):
        return febrl(name, seed)
    from bench.generator_splits import generator_split

    return generator_split(name, seed, records=records, queries=queries)


def _score(row: dict[str, Any], key: str) -> float:
    value = row.get(key)
    return -math.inf if value is None else float(value)


def choose_threshold(rows: list[dict[str, Any]], target: float) -> float:
    """The lowest threshold at which at most ``target`` of the calibration half's strangers,
    and of its household members, have any candidate at or above it."""
    threshold = -math.inf
    for kind in NON_HELD:
        scores = sorted((_score(r, "best_any") for r in rows
                         if r["half"] == "calibration" and r["kind"] == kind), reverse=True)
        if not scores:
            continue
        allowed = math.floor(target * len(scores))
        if allowed < len(scores) and math.isfinite(scores[allowed]):
            threshold = max(threshold, scores[allowed] + 1e-6)
    return threshold


def _rate(events: int, trials: int) -> dict[str, Any]:
    low, high = wilson(events, trials)
    return {"events": events, "queries": trials,
            "rate": round(events / trials, 5) if trials else None,
            "ci95": [round(low, 5), round(high, 5)]}


def _counts(rows: list[dict[str, Any]], found: Any, known: Any) -> dict[str, int]:
    """Counts on the evaluation half: ``found(row)`` for a held person's row (their record
    came back), ``known(row)`` for another's (anyone came back)."""
    out = {"held": 0, "found": 0, "right_record": 0}
    for kind in NON_HELD:
        out[kind] = out[f"{kind}_known"] = 0
    for r in rows:
        if r["half"] != "evaluation":
            continue
        if r["kind"] == "held":
            out["held"] += 1
            hit = bool(found(r))
            out["found"] += hit
            out["right_record"] += hit and bool(r["top_is_true"])
        else:
            out[r["kind"]] += 1
            out[f"{r['kind']}_known"] += bool(known(r))
    return out


def at_threshold(rows: list[dict[str, Any]], threshold: float) -> dict[str, int]:
    """Counts on the evaluation half at one threshold."""
    return _counts(rows, lambda r: _score(r, "best_true") >= threshold,
                   lambda r: _score(r, "best_any") >= threshold)


def as_shipped(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Counts on the evaluation half of what the agent answered with its own thresholds."""
    return _counts(rows, lambda r: r["true_known"], lambda r: r["known"])


def _add(total: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        total[k] = total.get(k, 0) + v


def figures(counts: dict[str, int], seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {"recall": _rate(counts["found"], counts["held"]),
                           "right_record": _rate(counts["right_record"], counts["held"])}
    for kind in NON_HELD:
        if counts.get(kind):
            out[f"false_known_{kind}s" if kind == "stranger" else "false_known_household"] = (
                _rate(counts[f"{kind}_known"], counts[kind]))
    out["ms_per_query"] = round(seconds * 1000, 3)
    recall = counts["found"] / counts["held"] if counts["held"] else 0.0
    fk = [counts[f"{k}_known"] / counts[k] for k in NON_HELD if counts.get(k)]
    out["meets_target"] = recall >= TARGET_RECALL and all(r <= TARGET_FALSE_KNOWN for r in fk)
    return out


def run(datasets: tuple[str, ...], seeds: tuple[int, ...], records: int, queries: int,
        splink: bool, target: float = TARGET_FALSE_KNOWN) -> dict[str, Any]:
    started = time.monotonic()
    if splink:
        from bench.splink_env import SplinkError, run_splink
    out: dict[str, Any] = {}
    for name in datasets:
        totals: dict[str, dict[str, int]] = {"mash": {}, "mash_as_shipped": {}, "splink": {}}
        seconds: dict[str, list[float]] = {k: [] for k in totals}
        per_seed = []
        for seed in seeds:
            split = make_split(name, seed, records, queries)
            mash = mash_peer.run(split)
            threshold = choose_threshold(mash["queries"], target)
            _add(totals["mash"], at_threshold(mash["queries"], threshold))
            _add(totals["mash_as_shipped"], as_shipped(mash["queries"]))
            seconds["mash"].append(mash["seconds_per_query"])
            seconds["mash_as_shipped"].append(mash["seconds_per_query"])
            seed_doc: dict[str, Any] = {
                "seed": seed, "records": mash["records"], "counts": split.counts(),
                "mash": {"threshold_from_calibration_half": round(threshold, 2),
                         "own_thresholds": mash["thresholds"],
                         "calibration": mash["calibration"]}}
            if splink:
                with tempfile.TemporaryDirectory() as tmp:
                    path = split.write(Path(tmp) / "split.json")
                    try:
                        peer = run_splink(path, Path(tmp) / "splink.json")
                    except SplinkError as exc:  # said in the results, not a crash
                        seed_doc["splink"] = {"failed": str(exc)}
                        per_seed.append(seed_doc)
                        print(f"  {name} seed {seed}: Splink failed: {exc}", flush=True)
                        continue
                s_threshold = choose_threshold(peer["queries"], target)
                _add(totals["splink"], at_threshold(peer["queries"], s_threshold))
                seconds["splink"].append(peer["seconds_per_query"])
                seed_doc["splink"] = {
                    "threshold_from_calibration_half": round(s_threshold, 2),
                    "blocking": peer.get("blocking"), "version": peer.get("splink_version"),
                    "training": peer.get("training"),
                    "seconds_per_query_with_training": peer.get(
                        "seconds_per_query_with_training")}
            per_seed.append(seed_doc)
            print(f"  {name} seed {seed}: done", flush=True)
        doc = {"seeds": per_seed}
        for key, counts in totals.items():
            if counts:
                doc[key] = figures(counts, sum(seconds[key]) / max(len(seconds[key]), 1))
        if splink and "splink" in doc:
            doc["mash_recall_minus_splink"] = round(
                doc["mash"]["recall"]["rate"] - doc["splink"]["recall"]["rate"], 5)
        out[name] = doc
    return {"target": {"recall": TARGET_RECALL, "false_known_rate": target},
            "datasets": out, "seeds": list(seeds), "generator_records": records,
            "generator_queries_per_kind": queries,
            "seconds": round(time.monotonic() - started, 1)}


def _fmt(f: dict[str, Any] | None) -> str:
    if not f or f.get("rate") is None:
        return "-"
    lo, hi = f["ci95"]
    return f"{f['rate']:.2%} ({f['events']}/{f['queries']}; {lo:.2%}-{hi:.2%})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--records", type=int, default=20_000, help="generator records")
    parser.add_argument("--queries", type=int, default=2_000,
                        help="generator queries of each kind")
    parser.add_argument("--no-splink", action="store_true", help="MASH alone")
    parser.add_argument("--quick", action="store_true",
                        help="one seed, 5,000 generator records, 1,000 queries of each kind")
    args = parser.parse_args(argv)
    datasets = tuple(d for d in args.datasets.split(",") if d)
    seeds = (1,) if args.quick else tuple(int(s) for s in args.seeds.split(","))
    records, queries = (5_000, 1_000) if args.quick else (args.records, args.queries)
    partial = args.quick or set(datasets) != set(DATASETS)
    result = run(datasets, seeds, records, queries, not args.no_splink)
    path = record("matching_accuracy" + ("_quick" if partial else ""), result)
    print(f"query mode, thresholds from the calibration half, figures on the evaluation half "
          f"(seeds {','.join(map(str, seeds))}); target recall >= {TARGET_RECALL:.0%} with "
          f"false known <= {TARGET_FALSE_KNOWN:.1%} for strangers and household members")
    for name, doc in result["datasets"].items():
        print(f"{name}:")
        for key in ("mash", "splink", "mash_as_shipped"):
            f = doc.get(key)
            if not f:
                continue
            print(f"  {key:16} recall {_fmt(f['recall'])}  right record "
                  f"{_fmt(f['right_record'])}\n  {'':16} false known: strangers "
                  f"{_fmt(f.get('false_known_strangers'))}, household "
                  f"{_fmt(f.get('false_known_household'))}; {f['ms_per_query']} ms/query"
                  f"{'  meets target' if f['meets_target'] else ''}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
