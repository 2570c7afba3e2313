"""What the blind token round costs: recall against ground truth, and what it saves.

For each corruption level, one agency's records and labelled queries come from the synthetic
generator (mash.synth.corrupt). A plain lookup finds a person when the matcher returns their
record; a blind lookup finds them only if the token round also makes the agency a candidate
(otherwise the agency answers NOT_KNOWN without seeing the subject). The figures:

- recall_plain / recall_blind: people in the records that each finds (the token round may only
  lose recall, never add it);
- stranger_candidate_rate: queries for people the agency does NOT hold that still reach round
  two, i.e. where the agency receives the subject although it knows nobody of that name (the
  lower, the more the token round protects people the agency does not know);
- token_ms: time to derive the tokens and look them up in the agency's token index.

    python -m bench.blind [--records 20000] [--queries 1000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from bench.results_io import percentile, record
from mash.blind.tokens import TokenIndex, is_thin, subject_tokens
from mash.matching import Matcher
from mash.synth.corrupt import scenario

LEVELS = ("low", "medium", "high")
KEY = bytes(range(32))


def measure(records: int, queries: int, level: str, seed: int) -> dict[str, Any]:
    sc = scenario(records, queries, level, seed)
    matcher = Matcher(sc.records)
    started = time.perf_counter()
    index = TokenIndex(KEY, sc.records)
    build_s = time.perf_counter() - started
    found_plain = found_blind = found_strict = 0
    token_ms: list[float] = []
    for query, person_id in sc.in_records:
        plain = any(c.record.values.get("person_id") == person_id
                    for c in matcher.search(query).candidates)
        t0 = time.perf_counter()
        tokens = subject_tokens(KEY, query)
        candidate = not tokens or index.candidates(tokens, is_thin(query.present())) > 0
        token_ms.append((time.perf_counter() - t0) * 1000)
        found_plain += plain
        found_blind += plain and candidate
        found_strict += plain and bool(tokens) and index.candidates(tokens) > 0
    reached = reached_strict = 0
    for query in sc.strangers:
        tokens = subject_tokens(KEY, query)
        reached += not tokens or index.candidates(tokens, is_thin(query.present())) > 0
        reached_strict += bool(tokens) and index.candidates(tokens) > 0
    n = len(sc.in_records)
    return {
        "level": level, "records": records, "queries": n, "strangers": len(sc.strangers),
        "recall_plain": found_plain / n, "recall_blind": found_blind / n,
        "recall_lost_by_token_round": (found_plain - found_blind) / n,
        "stranger_candidate_rate": reached / len(sc.strangers),
        # the same without the thin-subject fallback: what the fallback buys and costs
        "recall_blind_without_fallback": found_strict / n,
        "stranger_candidate_rate_without_fallback": reached_strict / len(sc.strangers),
        "token_index_build_s": round(build_s, 2), "tokens_in_index": len(index),
        "token_ms_p50": round(statistics.median(token_ms), 3),
        "token_ms_p99": round(percentile(sorted(token_ms), 99), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--name", default="blind_tokens")
    args = parser.parse_args()
    rows = [measure(args.records, args.queries, level, args.seed) for level in LEVELS]
    for row in rows:
        print(f"{row['level']:>7}: recall plain {row['recall_plain']:.4f}, blind "
              f"{row['recall_blind']:.4f} (lost {row['recall_lost_by_token_round']:.4f}); "
              f"strangers reaching round two {row['stranger_candidate_rate']:.4f}; without "
              f"the thin-subject fallback recall {row['recall_blind_without_fallback']:.4f}, "
              f"strangers {row['stranger_candidate_rate_without_fallback']:.4f}; "
              f"token round p50 {row['token_ms_p50']} ms, p99 {row['token_ms_p99']} ms")
    record(args.name, {"levels": rows, "records": args.records,
                                  "queries": args.queries, "seed": args.seed})


if __name__ == "__main__":
    main()
