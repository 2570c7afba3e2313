"""Disclosure decisions at the agent: decisions per second and latency per decision.

An agent makes one gate decision per query (may it answer at all; under which agreement; the
stage's release rules), then one record decision per matched record (restrictions, then the
fields through their transforms), all matched records of a query in one evaluation. Both are
evaluated by the Rego library in process (regopy, compiled bundle).

    python -m bench.policy_decisions [--n 5000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

from bench.results_io import percentile, record
from mash.demo.federation import POLICIES
from mash.policy import bundle, transforms
from mash.policy.decisions import LoadedPolicy
from mash.policy.engine import RegoEngine
from mash.policy.model import Requester
from mash.records import PersonRecord

TODAY = dt.date(2026, 6, 1)
TARGET_MS = 1.0


def police_record(i: int) -> PersonRecord:
    values = {
        "given_name": "Leah", "middle_names": "Marie", "family_name": "Thompson",
        "date_of_birth": "2014-05-17", "sex": "F", "postcode": "LS9 8AB", "pnc_id": "",
        "markers": "DA victim", "last_incident_type": "Domestic incident",
        "last_incident_date": f"2026-0{1 + i % 9}-14", "incident_summary": "Present at incident",
        "officer_in_case": "DC 1234", "restricted": "N",
    }
    return PersonRecord(f"R{i}", "niche", (), None, "F", (), {}, values)


def timed(fn, n: int) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - start) * 1000)
    return sorted(out)


def summary(values: list[float]) -> dict[str, float]:
    return {"mean": round(statistics.fmean(values), 4), "p50": round(percentile(values, 50), 4),
            "p99": round(percentile(values, 99), 4)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    built = bundle.build(POLICIES)
    policy = LoadedPolicy(built, RegoEngine(built))
    context = transforms.TransformContext(hmac_key=b"k" * 32)
    who = Requester("mash", "analyst", "child_safeguarding", "s47")
    records = [police_record(i) for i in range(64)]
    gate = policy.gate("police", who, TODAY)

    def one(i: int) -> None:
        policy.disclose_all("police", who, gate, [records[i % 64]], TODAY, context)

    def ten(i: int) -> None:
        policy.disclose_all("police", who, gate, records[i % 54: i % 54 + 10], TODAY, context)

    def query(i: int) -> None:  # what an agent does for a query with one match
        g = policy.gate("police", who, TODAY)
        policy.disclose_all("police", who, g, [records[i % 64]], TODAY, context)

    for i in range(300):  # warm up
        query(i)
    gate_ms = timed(lambda i: policy.gate("police", who, TODAY), args.n)
    one_ms = timed(one, args.n)
    ten_ms = [t / 10 for t in timed(ten, max(1, args.n // 10))]
    query_ms = timed(query, args.n)
    start = time.perf_counter()
    for i in range(args.n // 10):
        ten(i)
    per_second = (args.n // 10) * 10 / (time.perf_counter() - start)
    figures = {
        "what": "police agreement at s47, 13-field records; regopy in process",
        "runs": args.n,
        "gate_ms": summary(gate_ms),
        "record_decision_ms": summary(one_ms),
        "record_decision_in_batch_of_10_ms": summary(ten_ms),
        "query_with_one_match_ms": summary(query_ms),
        "record_decisions_per_second_batched": round(per_second),
        "agreements": len(built.agreements),
        "fields_per_record": len(records[0].values),
        "target_ms_per_decision": TARGET_MS,
        "meets_target": percentile(one_ms, 99) < TARGET_MS,
    }
    path = record("policy_decisions", figures)
    for key in ("gate_ms", "record_decision_ms", "record_decision_in_batch_of_10_ms",
                "query_with_one_match_ms"):
        print(f"{key:36} p50 {figures[key]['p50']:.3f} ms   p99 {figures[key]['p99']:.3f} ms")
    print("record decisions per second (batched): "
          f"{figures['record_decisions_per_second_batched']}")
    print(f"target < {TARGET_MS} ms per record decision (p99): "
          f"{'met' if figures['meets_target'] else 'NOT met'}; written to {path}")


if __name__ == "__main__":
    main()
