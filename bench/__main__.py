"""Run every benchmark in sequence, each in its own process (so that memory figures are its
own): ``python -m bench`` (the full runs) or ``python -m bench --quick`` (small sizes, a few
minutes; quick results go to *_quick.json files, which are not committed).

    python -m bench [--quick] [--only accuracy,scale]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

FULL: dict[str, list[str]] = {
    "accuracy": [],
    "scale": [],
    "build_workers": [],
    "policy_decisions": [],
    "policy_space": [],
    "audit_append": [],
    "blind": [],
    "ceiling": [],
    "redraw": [],
    "e2e": [],
    "board_report": [],
    "peer_checks": [],
    "ha": [],
}
QUICK: dict[str, list[str]] = {
    "accuracy": ["--quick"],
    "scale": ["--quick"],
    "build_workers": ["--records", "200000", "--queries", "100", "--name",
                      "build_workers_quick"],
    "policy_decisions": [],
    "policy_space": ["--runs", "2", "--name", "policy_space_quick"],
    "audit_append": [],
    "blind": ["--records", "2000", "--queries", "200", "--name", "blind_tokens_quick"],
    "ceiling": ["--seeds", "1", "--name", "recall_ceiling_quick"],
    "redraw": ["--datasets", "generator-medium", "--seeds", "1", "--draws", "2", "--records",
               "5000", "--queries", "1000", "--name", "calibration_redraw_quick"],
    "e2e": ["--records", "2000", "--lookups", "50", "--seconds", "3", "--runs", "1",
            "--name", "e2e_quick"],
    "board_report": ["--quick"],
    "peer_checks": ["--n", "300", "--name", "peer_checks_quick"],
    "ha": ["--quick"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument("--only", default="", help="comma-separated: " + ", ".join(FULL))
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(plan)
    unknown = set(names) - set(plan)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    failed = []
    for name in names:
        print(f"\n=== bench.{name} {' '.join(plan[name])}", flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", f"bench.{name}", *plan[name]])
        print(f"=== bench.{name}: {'ok' if result.returncode == 0 else 'FAILED'} in "
              f"{time.monotonic() - started:.0f} s", flush=True)
        if result.returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
