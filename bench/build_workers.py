"""A first build in one process and with worker processes, side by side in one run.

``python -m bench.build_workers --records 1000000`` writes
``bench/results/build_workers_<N>.json``: the same synthetic extract (``bench.scale``'s data
phase) loaded by a fresh agent once per ``--workers`` setting (default ``1,0``: the agent's
own process alone, then ``index.build_workers: 0``, one worker per CPU), each build a child
process of its own with the saved index removed before it, so that no build reuses another's
work. Each build reports its seconds, the agent's peak RSS and the largest worker's, and the
index and store it wrote (their sizes must agree: the same records, the same index).

The machine is shared and noisy, which is why the settings are timed one after the other in
the same run rather than compared with an older figure.

    python -m bench.build_workers [--records 1000000] [--workers 1,0] [--extract-cache DIR]
                                  [--name build_workers_quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.results_io import record
from bench.scale import _child


def _builds(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    data = argparse.Namespace(records=args.records, queries=args.queries, level=args.level,
                              data_workers=0, build_workers=0,
                              extract_cache=args.extract_cache)
    _child("data", data, workdir)
    out = []
    for workers in args.workers:
        for stale in workdir.glob("agent.index*"):
            stale.unlink()
        figures = _child("build", argparse.Namespace(**{**vars(data),
                                                         "build_workers": workers}), workdir)
        out.append({"build_workers_setting": workers, **figures})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--level", default="low")
    parser.add_argument("--workers", default="1,0",
                        help="index.build_workers settings to time, in order (0: one per CPU)")
    parser.add_argument("--workdir-root", type=Path, default=None)
    parser.add_argument("--extract-cache", type=Path, default=None)
    parser.add_argument("--name", default=None,
                        help="the results file's name (default build_workers_<records>)")
    args = parser.parse_args(argv)
    try:
        args.workers = [int(w) for w in args.workers.split(",")]
    except ValueError:
        parser.error(f"--workers: expected whole numbers separated by commas, got "
                     f"{args.workers!r}")
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="build-workers-", dir=args.workdir_root) as tmp:
        builds = _builds(args, Path(tmp))
    after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    first = builds[0]["build_seconds"]
    for one in builds:
        one["speed_up_over_first"] = round(first / one["build_seconds"], 2)
    same = len({(b["records_indexed"], b["index_file_mb"], b["store_file_mb"])
                for b in builds}) == 1
    path = record(args.name or f"build_workers_{args.records}", {
        "records": args.records, "level": args.level, "builds": builds,
        "same_index_and_store_sizes": same,
        "machine_load": {"uptime_before": uptime, "uptime_after": after,
                         "cpus": os.cpu_count()}})
    print(f"first build of {args.records:,} records, side by side:")
    for one in builds:
        print(f"  build_workers {one['build_workers_setting']} "
              f"({one['build_workers']} in use): {one['build_seconds']} s, "
              f"x{one['speed_up_over_first']}; peak RSS agent {one['peak_rss_mb_build']} MB, "
              f"worker {one['peak_rss_mb_build_worker']} MB")
    print(f"  same index and store sizes: {same}; {after}; written to {path}")


if __name__ == "__main__":
    main()
