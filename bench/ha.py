"""Several brokers: a broker killed under load, and the CPU a lookup costs with 1, 2, 3 brokers.

Failover: --brokers brokers and --agents agents as real processes (mTLS, real Rego, SQLite
audit), --workers analysts looking up without pause, each with a client balanced over every
broker; after --seconds, `kill -9` of the last broker; --seconds later it is started again,
and the load runs until every agent is back at it and --seconds more. Figures are read back
from the clients' answers and every process's own audit store (tests/failover_support.py):
failed (after retries), retried, answered_without_audit, not_known_unsearched (both must be
0), max_gap_seconds (the longest time without an answered lookup after the kill; target
under 2 s) and the agents' reconnect time to the restarted broker.

CPU: the same load for --seconds on 1, 2 and 3 brokers, with the CPU time of every broker
and agent process (and of this client) per answered lookup. This machine's cores are the
limit, so CPU per lookup, not lookups a second, says what another broker costs.

    python -m bench.ha [--brokers 2] [--agents 8] [--records 2000] [--seconds 5] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.e2e import cpu_seconds
from bench.results_io import record, speed_probe
from tests.failover_support import HaFederation, Load, audit_figures, max_gap, not_checked_reasons
from tests.helpers import AGENCIES

TARGETS = {"max_gap_seconds": 2.0, "answered_without_audit": 0, "not_known_unsearched": 0,
           "failed": 0}


def _wait(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.05)


def failover(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    agencies = AGENCIES[:args.agents]
    ha = HaFederation(root, agencies, brokers=args.brokers, background=args.records)
    victim = args.brokers
    try:
        ha.start(timeout=300)
        with Load(ha.fed, workers=args.workers) as load:
            time.sleep(args.seconds)
            killed_at = time.monotonic()
            ha.kill(victim)
            time.sleep(args.seconds)
            ha.start_broker(victim)
            ha.wait_serving(victim)
            reconnect = ha.wait_agents(victim, timeout=60)
            back_at = time.monotonic()
            time.sleep(args.seconds)
            ended_at = time.monotonic()
    finally:
        ha.stop()
    outcomes = load.outcomes
    figures = audit_figures(ha.fed, agencies, outcomes)
    return {
        "brokers": args.brokers,
        "agents": len(agencies),
        "workers": args.workers,
        "lookups": len(outcomes),
        "failed": sum(1 for o in outcomes if o.error),
        "retried": load.retried,
        "answered_without_audit": figures["answered_without_audit"],
        "not_known_unsearched": figures["not_known_unsearched"],
        "retry_unaudited": figures["retry_unaudited"],
        "not_checked_answers": figures["not_checked_answers"],  # "no agreement" aside
        "not_checked_by_reason": not_checked_reasons(outcomes),
        "not_known_answers": figures["not_known_answers"],
        "max_gap_seconds": round(max_gap(outcomes, killed_at, ended_at), 3),
        "agents_back_at_restarted_broker_seconds": round(reconnect, 2),
        "lookups_after_restart": sum(1 for o in outcomes if o.started > back_at),
    }


def cpu(root: Path, brokers: int, args: argparse.Namespace) -> dict[str, Any]:
    agencies = AGENCIES[:args.agents]
    ha = HaFederation(root, agencies, brokers=brokers, background=args.records)
    try:
        ha.start(timeout=300)
        time.sleep(1)  # start-up settles
        procs = ha.processes()
        with Load(ha.fed, workers=args.workers) as load:
            _wait(lambda: load.answered_since(0) >= args.workers, 30)  # warm
            before = {n: cpu_seconds(p.popen.pid) for n, p in procs.items()}
            client_before, started, count_before = cpu_seconds(), time.monotonic(), len(
                [o for o in load.outcomes if not o.error])
            time.sleep(args.seconds)
            after = {n: cpu_seconds(p.popen.pid) for n, p in procs.items()}
            client_after, elapsed = cpu_seconds(), time.monotonic() - started
            answered = len([o for o in load.outcomes if not o.error]) - count_before
    finally:
        ha.stop()
    per = max(answered, 1)
    brokers_ms = sum(after[n] - before[n] for n in procs if n.startswith("broker")) * 1000 / per
    agents_ms = sum(after[n] - before[n] for n in procs if not n.startswith("broker")) * 1000 / per
    return {"lookups": answered, "lookups_per_second": round(answered / elapsed, 1),
            "cpu_ms_per_lookup": round(brokers_ms + agents_ms, 2),
            "brokers_cpu_ms_per_lookup": round(brokers_ms, 2),
            "agents_cpu_ms_per_lookup": round(agents_ms, 2),
            "client_cpu_ms_per_lookup": round((client_after - client_before) * 1000 / per, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ha")
    parser.add_argument("--brokers", type=int, default=2)
    parser.add_argument("--agents", type=int, default=len(AGENCIES))
    parser.add_argument("--records", type=int, default=2000, help="records per agent")
    parser.add_argument("--workers", type=int, default=4, help="analysts looking up at once")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="3 agents, 2 s phases")
    parser.add_argument("--name", default="")
    args = parser.parse_args()
    if args.brokers < 2:
        parser.error("--brokers must be at least 2 (one is killed)")
    if not 1 <= args.agents <= len(AGENCIES):
        parser.error(f"--agents must be 1 to {len(AGENCIES)}")
    if args.quick:
        args.agents, args.seconds, args.records = min(args.agents, 3), 2.0, 500
    name = args.name or ("ha_quick" if args.quick else "ha")
    probe = speed_probe()
    with tempfile.TemporaryDirectory(prefix="mash-bench-ha-") as tmp:
        figures = failover(Path(tmp) / "failover", args)
        per_brokers = {str(n): cpu(Path(tmp) / f"cpu-{n}", n, args) for n in (1, 2, 3)}
    figures["cpu_per_lookup_by_brokers"] = per_brokers
    figures["cpu_ms_per_lookup_1_broker"] = per_brokers["1"]["cpu_ms_per_lookup"]
    figures["cpu_ms_per_lookup_2_brokers"] = per_brokers["2"]["cpu_ms_per_lookup"]
    figures["cpu_ms_per_lookup_3_brokers"] = per_brokers["3"]["cpu_ms_per_lookup"]
    figures["records_per_agent"] = args.records
    figures["phase_seconds"] = args.seconds
    figures["speed_probe_ms"] = probe
    figures["targets"] = TARGETS
    figures["met"] = {
        "max_gap_seconds": figures["max_gap_seconds"] < TARGETS["max_gap_seconds"],
        **{k: figures[k] == 0 for k in ("answered_without_audit", "not_known_unsearched",
                                       "failed")}}
    path = record(name, figures)
    print(path.read_text())
    if not all(figures["met"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
