"""The whole decision space: how long `mash policy diff`, `check` and `sign` take to decide it.

Every cell (owner x requester x role x purpose x stage) is decided by a freshly compiled
policy (no memo carried over), as `mash policy diff` does for each side; assertions are then
proven over the decided space.

    python -m bench.policy_space [--runs 5] [--name policy_space]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

from bench.results_io import record, speed_probe
from mash.demo.federation import POLICIES
from mash.policy import assertions, bundle
from mash.policy.decisions import LoadedPolicy
from mash.policy.diff import diff
from mash.policy.engine import RegoEngine
from mash.policy.space import decide_all, universe

TODAY = dt.date(2026, 6, 1)


def fresh() -> LoadedPolicy:
    built = bundle.build(POLICIES)
    return LoadedPolicy(built, RegoEngine(built))


def seconds(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--name", default="policy_space", help="results file name")
    args = parser.parse_args()
    probe = speed_probe()
    space = universe(fresh().bundle)
    enumerate_s, diff_s, prove_s = [], [], []
    for _ in range(args.runs):
        policy = fresh()
        enumerate_s.append(seconds(lambda p=policy: decide_all(p, space, TODAY)))
        old, new = fresh(), fresh()
        diff_s.append(seconds(lambda o=old, n=new: diff(o, n, TODAY)))
        policy = fresh()
        rules = assertions.load(POLICIES, policy.bundle)
        prove_s.append(seconds(lambda p=policy, r=rules: assertions.prove(p, r, TODAY)))
    figures = {
        "cells": space.size(), "runs": args.runs, "speed_probe_ms": probe,
        "enumerate_s_median": round(statistics.median(enumerate_s), 3),
        "cells_per_s": round(space.size() / statistics.median(enumerate_s)),
        "diff_two_bundles_s_median": round(statistics.median(diff_s), 3),
        "prove_assertions_s_median": round(statistics.median(prove_s), 3),
        "assertions": len(assertions.load(POLICIES, fresh().bundle)),
    }
    print(figures)
    print(f"wrote {record(args.name, figures)}")


if __name__ == "__main__":
    main()
