"""How much recall the generator leaves a matcher that keeps household members out.

A held person whose query gives a clearly different given name from their record (not a
typo, nickname, initial or swap of it, as `compare_given` compares names) and no identifier
looks, field for field, like a same-sex twin of that person asked about without one: the
same family name, date of birth, sex and address, each corrupted the same way, and another
given name. Whatever a matcher answers for the one it answers, as often, for the other. So
if same-sex twins without an identifier are a share ``T`` of the household members asked
about, keeping household members at or under the target ``t`` answers at most ``t / T`` of
such held people known, and recall is at most ``1 - D * (1 - t / T)`` where ``D`` is their
share of held people. The bound is reported twice: with ``T`` as the generator makes it,
and with the 1% the calibration assumes at least (`calibration.relation_shares`).

    python -m bench.ceiling [--levels low,medium] [--seeds 1,2,3] [--name recall_ceiling]

It also reports what the MASH agent as shipped finds of those held people and of the rest.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench import mash_peer
from bench.generator_splits import generator_split
from bench.results_io import record
from mash.matching.compare import Given, compare_given

TARGET = 0.001
ASSUMED_TWINS = 0.01
IDENTIFIERS = tuple(mash_peer.IDENTIFIERS)  # the split columns a query gives them in


def twin_like(query: dict[str, str], record_row: dict[str, str]) -> bool:
    """The given name differs from the record's, the right way round and swapped, and the
    query gives no identifier."""
    given = record_row["given_name"].lower()
    levels = (compare_given(query["given_name"].lower(), given),
              compare_given(query["family_name"].lower(), given))
    return min(levels) == Given.DIFFERENT and not any(query.get(k) for k in IDENTIFIERS)


def measure(level: str, seed: int) -> dict[str, int]:
    split = generator_split(f"generator-{level}", seed=seed)
    answered = {r["query_id"]: r for r in mash_peer.run(split)["queries"]}
    records = {r["person_id"]: r for r in split.records}
    out = {"held": 0, "found": 0, "twin_like": 0, "twin_like_found": 0, "household": 0,
           "twins": 0, "twins_known": 0}
    for q in split.queries:
        row = answered[q["query_id"]]
        if q["kind"] == "held":
            like = twin_like(q, records[q["person_id"]])
            out["held"] += 1
            out["found"] += row["true_known"]
            out["twin_like"] += like
            out["twin_like_found"] += like and row["true_known"]
        elif q["kind"] == "household":
            twin = bool(q.get("same_sex_twin")) and not any(q.get(k) for k in IDENTIFIERS)
            out["household"] += 1
            out["twins"] += twin
            out["twins_known"] += twin and row["known"]
    return out


def ceiling(like_share: float, twin_share: float, target: float = TARGET) -> float:
    """The most recall a matcher holding household members to ``target`` can have."""
    allowed = 1.0 if twin_share <= 0 else min(1.0, target / twin_share)
    return 1.0 - like_share * (1.0 - allowed)


def summary(counts: dict[str, int]) -> dict[str, Any]:
    like = counts["twin_like"] / max(counts["held"], 1)
    twins = counts["twins"] / max(counts["household"], 1)
    rest = counts["held"] - counts["twin_like"]
    return {**counts, "twin_like_share": round(like, 5), "twin_share": round(twins, 5),
            "recall": round(counts["found"] / max(counts["held"], 1), 5),
            "recall_of_the_rest": round(
                (counts["found"] - counts["twin_like_found"]) / max(rest, 1), 5),
            "ceiling_generator_twins": round(ceiling(like, twins), 5),
            "ceiling_assumed_twins": round(ceiling(like, max(twins, ASSUMED_TWINS)), 5)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="low,medium")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--name", default="recall_ceiling", help="the results file's name")
    args = parser.parse_args(argv)
    levels: dict[str, Any] = {}
    for level in args.levels.split(","):
        total: dict[str, int] = {}
        for seed in (int(s) for s in args.seeds.split(",")):
            for k, v in measure(level, seed).items():
                total[k] = total.get(k, 0) + v
        levels[level] = s = summary(total)
        print(f"{level}: held {s['held']}, found {s['recall']:.2%}; twin-like held "
              f"{s['twin_like']} ({s['twin_like_share']:.2%}), found {s['twin_like_found']}; "
              f"the rest found {s['recall_of_the_rest']:.2%}; same-sex twins without an "
              f"identifier {s['twins']} of {s['household']} household members "
              f"({s['twin_share']:.2%}), known {s['twins_known']}; recall ceiling at "
              f"{TARGET:.1%} household false known {s['ceiling_generator_twins']:.2%} "
              f"(twins as the generator makes them), {s['ceiling_assumed_twins']:.2%} "
              f"(twins at {ASSUMED_TWINS:.0%}, as the calibration assumes at least)")
    path = record(args.name, {"target_false_known": TARGET, "seeds": args.seeds,
                              "assumed_twin_share": ASSUMED_TWINS, "levels": levels})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
