"""Two versions of the code, measured in pairs: which one costs less CPU a lookup?

This machine's speed drifts by half from hour to hour, so two `bench.e2e` runs minutes apart
cannot tell a 5% change from the weather. Here both federations (a broker and eight agents
each, from two checkouts) are up at once, idle but for the one under load, and are loaded in
alternating windows at concurrency 16 (ABBA order); each window's CPU per lookup is compared
with its neighbour's, so drift moves both sides of a pair alike.

    git worktree add /tmp/baseline <commit>
    python -m bench.paired --baseline /tmp/baseline [--candidate .] [--rounds 10]

Prints and records (bench/results/paired_<name>.json) the mean and median paired ratio of
CPU per lookup, candidate over baseline (below 1: the candidate is cheaper), with the noise
band computed from the pairs themselves: a 95% bootstrap interval of the mean ratio. Only
an interval that excludes 1 is a difference; otherwise the verdict is "within the noise",
and the interval's width says how large a change this run could have seen.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

from bench import e2e
from bench.results_io import record, speed_probe
from mash import eventloop


class Side:
    """One code version's federation, started from its own checkout."""

    def __init__(self, label: str, code: Path, root: Path, files: dict[str, Path]) -> None:
        self.label, self.code = label, code
        run = root / f"fed-{label}"
        shutil.rmtree(run, ignore_errors=True)
        self.fed = e2e.build_federation(run, files)
        logs = run / "logs"
        logs.mkdir()
        self.procs = [e2e.spawn(["-m", "mash", "broker", "serve", "--config",
                                 str(self.fed.broker_config)], logs / "broker.log", code)]
        self.procs += [e2e.spawn(["-m", "mash", "agent", "serve", "--config",
                                  str(self.fed.agent_configs[a])], logs / f"{a}.log", code)
                       for a in e2e.AGENCIES]
        self.client = e2e.Client(self.fed)

    async def window(self, requests: list[Any], seconds: float) -> dict[str, float]:
        rate, cpu = await e2e.metered(self.client.lookup, requests, seconds, 16,
                                      dict(zip(["broker", *e2e.AGENCIES], self.procs,
                                               strict=True)))
        return {"lookups_per_second": round(rate, 1), "cpu_ms_per_lookup": cpu["total"],
                "broker_cpu_ms": cpu["broker"]}

    async def close(self) -> None:
        e2e.stop_all(self.procs)
        await self.client.channel.close()


def noise_band(ratios: list[float], *, resamples: int = 10_000,
               seed: int = 0) -> dict[str, Any]:
    """The 95% bootstrap interval of the mean paired ratio, and what it means."""
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(ratios, k=len(ratios)))
                   for _ in range(resamples))
    low, high = means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]
    verdict = ("candidate cheaper" if high < 1 else "candidate costlier" if low > 1
               else "within the noise")
    return {"ci95": [round(low, 3), round(high, 3)], "verdict": verdict,
            "half_width": round((high - low) / 2, 3)}


def _commit(path: Path) -> str:
    """The checkout's commit (with "+changes" when its tracked files differ from it)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True,
                              text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def _checkout(path: Path) -> Path:
    path = path.resolve()
    if not (path / "mash" / "__init__.py").is_file():
        raise SystemExit(f"{path} is not a MASH Exchange checkout (no mash/__init__.py): "
                         "make one with `git worktree add <dir> <commit>`")
    return path


async def run(args: argparse.Namespace) -> dict[str, Any]:
    root = args.dir.resolve()
    data = root / "data"
    shutil.rmtree(data, ignore_errors=True)
    _, people = e2e.write_data(data, args.records, args.seed)
    files = {a: data / e2e.SPECS[a]["source"]["file"] for a in e2e.AGENCIES}
    requests, _ = e2e.requests_for(people, args.lookups, args.seed)
    sides: list[Side] = []
    try:
        for label, code in (("baseline", args.baseline), ("candidate", args.candidate)):
            sides.append(Side(label, code, root, files))
        for side in sides:
            await side.client.wait_online(e2e.AGENCIES, timeout=1800, procs=side.procs)
            await e2e.latencies(side.client.lookup, requests[:50])  # warm up
        probe_before = speed_probe()
        pairs = []
        for n in range(args.rounds):
            order = sides if n % 2 == 0 else sides[::-1]
            pair = {side.label: await side.window(requests, args.seconds) for side in order}
            pairs.append(pair)
            print(f"pair {n + 1}: " + ", ".join(
                f"{label} {w['lookups_per_second']}/s {w['cpu_ms_per_lookup']} ms"
                for label, w in pair.items()), flush=True)
    finally:
        for side in sides:
            await side.close()
    ratios = [p["candidate"]["cpu_ms_per_lookup"] / p["baseline"]["cpu_ms_per_lookup"]
              for p in pairs]
    return {"records_per_agent": args.records, "window_seconds": args.seconds,
            "baseline": _commit(args.baseline), "candidate": _commit(args.candidate),
            "speed_probe_ms_before": probe_before, "speed_probe_ms_after": speed_probe(),
            "cpu_ratio_mean": round(statistics.fmean(ratios), 3),
            "cpu_ratio_median": round(statistics.median(ratios), 3),
            "cpu_ratio_noise": noise_band(ratios),
            "lookups_per_second_mean": {
                label: round(statistics.fmean(p[label]["lookups_per_second"] for p in pairs), 1)
                for label in ("baseline", "candidate")},
            "pairs": pairs}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.paired")
    parser.add_argument("--baseline", type=Path, required=True, help="checkout of version A")
    parser.add_argument("--candidate", type=Path, default=Path("."),
                        help="checkout of version B (default: this one)")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=10, help="pairs of windows")
    parser.add_argument("--seconds", type=float, default=8, help="length of one window")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--dir", type=Path, default=Path("var/bench-paired"))
    parser.add_argument("--name", default="paired")
    args = parser.parse_args()
    args.baseline, args.candidate = _checkout(args.baseline), _checkout(args.candidate)
    figures = eventloop.run(run(args))
    path = record(args.name, figures)
    noise = figures["cpu_ratio_noise"]
    print(f"CPU a lookup, candidate / baseline: mean {figures['cpu_ratio_mean']}, median "
          f"{figures['cpu_ratio_median']} over {args.rounds} pairs (below 1: the candidate is "
          f"cheaper); 95% interval {noise['ci95']}: {noise['verdict']}; lookups a second "
          f"{figures['lookups_per_second_mean']}; written to {path}")


if __name__ == "__main__":
    main()
