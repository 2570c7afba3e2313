"""Fitting the Fellegi-Sunter m and u probabilities from labelled synthetic data.

The generator (mash.synth.corrupt) keeps ground truth, so no EM is needed: the levels are
counted directly.

- m(level): the share of true pairs (a query and the record of the same person) that compare
  at that level. Every true pair counts, blocked or not, so m does not inherit blocking's
  blind spots.
- u(level): the share of non-pairs (a query and a record of someone else, drawn at random)
  that compare at that level. Dates of birth and postcodes are compared against every record
  (cheap, and u for an exact date is about 1 in 30,000: a sample would barely see it); names
  against a random sample of records per query.

A missing value is not a level (it weighs nothing). Levels are taken from the matcher's own
scoring (mash.matching.score), so the fit sees exactly what the runtime compares, including
the best of the name and its swapped order.

Not fitted, kept as set by hand (``HAND_SET`` in weights.py): sex and identifiers
(``KEPT``), which the generator never records wrongly (it would say a disagreement never
happens to one person, and real records do disagree), and any level the true pairs show
fewer than ``MIN_COUNT`` times (the generator never gives an initial, and queries carry no
second forename): for those the data cannot say how likely they are. One u is kept too
(``KEEP_U``): a full postcode. The generator gives every person a postcode of their own
drawn from about 180,000, with no households, so two different people share one about once
in 180,000 pairs; in real records a mother and her children share a postcode and a family
name, and fitting that u would let a household match on name and address alone.

Fit on a seed used neither for calibrating the thresholds (101) nor for evaluating (202):

    python -m mash.matching.fit [--seed 303] [--level medium] [--records 50000]
                                [--queries 5000] [--write]

``--write`` rewrites the fitted table in mash/matching/weights.py (between its markers); the
figures and counts go to bench/results/matching_weights.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mash.matching.compare import Dob, Family, Given, Postcode, compare_dob, compare_postcodes
from mash.matching.engine import Matcher
from mash.matching.index import NONE
from mash.matching.score import score
from mash.matching.weights import HAND_SET
from mash.normalise import postcode_district, postcode_sector
from mash.subject import SubjectQuery
from mash.synth.corrupt import Scenario, scenario

FITTED_FIELDS = {"given": Given, "family": Family, "dob": Dob, "postcode": Postcode}
KEPT = ("sex", "identifier")
KEEP_U = {("postcode", Postcode.FULL)}  # the generator has no households (see above)
MIN_COUNT = 30  # true-pair observations below which a level keeps its hand-set m and u
SMOOTHING = 0.5  # additive pseudo-count per level (no level gets a probability of 0)
NAME_SAMPLE = 1000  # random records per query for the names' u


@dataclass
class Counts:
    """How often each level occurs among true pairs (m) and non-pairs (u), per field."""

    m: dict[str, np.ndarray] = field(default_factory=lambda: {
        f: np.zeros(cls.SIZE, dtype=np.int64) for f, cls in FITTED_FIELDS.items()})
    u: dict[str, np.ndarray] = field(default_factory=lambda: {
        f: np.zeros(cls.SIZE, dtype=np.int64) for f, cls in FITTED_FIELDS.items()})
    true_pairs: int = 0
    non_pairs: int = 0

    def add(self, side: str, field_name: str, levels: np.ndarray) -> None:
        table = self.m if side == "m" else self.u
        table[field_name] += np.bincount(levels.astype(np.int64),
                                         minlength=len(table[field_name]))


def _postcode_levels(matcher: Matcher, query: SubjectQuery, rows: slice | np.ndarray
                     ) -> np.ndarray:
    index, strings = matcher.index, matcher.index.strings
    pcs = list(query.postcodes)
    return compare_postcodes(
        [p.encode() for p in pcs],
        [s for s in (strings.get(postcode_sector(p)) for p in pcs) if s != NONE],
        [d for d in (strings.get(postcode_district(p)) for p in pcs) if d != NONE],
        index.postcode[rows], index.sector[rows], index.district[rows])


def count(sc: Scenario, rng: np.random.Generator, counts: Counts | None = None,
          name_sample: int = NAME_SAMPLE) -> Counts:
    """Count comparison levels of the scenario's true pairs and of random non-pairs."""
    counts = counts or Counts()
    matcher = Matcher(sc.records)
    index = matcher.index
    owner = np.array([r.values["person_id"] for r in sc.records], dtype=object)
    rows_of: dict[str, list[int]] = {}
    for row, person_id in enumerate(owner.tolist()):
        rows_of.setdefault(person_id, []).append(row)
    everyone = slice(None)
    n = len(index)
    for query, person_id in sc.in_records:
        mine = np.array(rows_of[person_id])
        s = score(index, query, mine, matcher.weights)
        for name, levels in (("given", s.given), ("family", s.family), ("dob", s.dob),
                             ("postcode", s.postcode)):
            counts.add("m", name, levels)
        counts.true_pairs += len(mine)
    queries = [q for q, _ in sc.in_records] + list(sc.strangers)
    whose = [p for _, p in sc.in_records] + [""] * len(sc.strangers)
    for query, person_id in zip(queries, whose, strict=True):
        others = owner != person_id
        counts.add("u", "dob", compare_dob(query.date_of_birth, index.dob)[others])
        counts.add("u", "postcode", _postcode_levels(matcher, query, everyone)[others])
        sample = rng.choice(n, size=min(name_sample, n), replace=False)
        sample = np.sort(sample[owner[sample] != person_id])
        s = score(index, query, sample, matcher.weights)
        counts.add("u", "given", s.given)
        counts.add("u", "family", s.family)
        counts.non_pairs += len(sample)
    return counts


def _probabilities(counts: np.ndarray, missing: int) -> np.ndarray:
    present = np.delete(counts, missing).astype(np.float64)
    p = (present + SMOOTHING) / (present.sum() + SMOOTHING * len(present))
    return np.insert(p, missing, np.nan)


def fit(counts: Counts, prior: Mapping[str, Mapping[int, tuple[float, float]]] = HAND_SET
        ) -> tuple[dict[str, dict[int, tuple[float, float]]], dict[str, list[int]]]:
    """(m/u table, levels kept from ``prior`` for want of data) from level counts."""
    table: dict[str, dict[int, tuple[float, float]]] = {}
    kept: dict[str, list[int]] = {}
    for name, cls in FITTED_FIELDS.items():
        missing = cls.MISSING
        m = _probabilities(counts.m[name], missing)
        u = _probabilities(counts.u[name], missing)
        table[name] = {}
        kept[name] = []
        for level in prior[name]:
            if (name, level) in KEEP_U and counts.m[name][level] >= MIN_COUNT:
                table[name][level] = (float(m[level]), prior[name][level][1])
            elif counts.m[name][level] < MIN_COUNT or counts.u[name][level] < MIN_COUNT:
                table[name][level] = prior[name][level]
                kept[name].append(level)
            else:
                table[name][level] = (float(m[level]), float(u[level]))
    for name in KEPT:
        table[name] = dict(prior[name])
    return table, kept


_LEVEL_NAMES = {name: {v: k for k, v in vars(cls).items() if k.isupper() and k != "SIZE"}
                for name, cls in {**FITTED_FIELDS, "sex": None, "identifier": None}.items()
                if cls is not None}
_CLASS = {"given": "Given", "family": "Family", "dob": "Dob", "postcode": "Postcode",
          "sex": "Agree", "identifier": "Agree"}
BEGIN, END = "# BEGIN FITTED TABLE", "# END FITTED TABLE"


def render(table: Mapping[str, Mapping[int, tuple[float, float]]],
           kept: Mapping[str, list[int]], source: str) -> str:
    """The table as Python source for weights.py: one line per level, weight in a comment."""
    agree = {0: "AGREE", 1: "DISAGREE"}
    lines = [BEGIN, *(f"# {line}" for line in textwrap.wrap(source, 96)),
             "# field -> level -> (m, u); log2(m/u) bits in the comment",
             "MU: dict[str, dict[int, tuple[float, float]]] = {"]
    for name, levels in table.items():
        lines.append(f'    "{name}": {{')
        for level, (m, u) in levels.items():
            label = (_LEVEL_NAMES[name][level] if name in _LEVEL_NAMES else agree[level])
            note = ("by hand: the generator never gets it wrong" if name in KEPT else
                    "by hand: too rare in the training data" if level in kept.get(name, [])
                    else "m fitted, u by hand: no households" if (name, level) in KEEP_U
                    else "fitted")
            lines.append(f"        {_CLASS[name]}.{label}: ({m:.3g}, {u:.3g}),"
                         f"  # {np.log2(m / u):+.2f}, {note}")
        lines.append("    },")
    lines += ["}", END]
    return "\n".join(lines)


def write_table(path: Path, text: str) -> None:
    """Replace the block between the markers in weights.py."""
    source = path.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(source):
        raise ValueError(f"no {BEGIN} ... {END} block in {path}")
    path.write_text(pattern.sub(lambda _: text, source))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=303)
    parser.add_argument("--level", default="medium",
                        help="corruption level(s) to fit on, comma-separated")
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=5_000)
    parser.add_argument("--strangers", type=int, default=5_000)
    parser.add_argument("--write", action="store_true", help="rewrite the table in weights.py")
    parser.add_argument("--out", default="bench/results/matching_weights.json")
    args = parser.parse_args(argv)
    if args.seed in (101, 202):
        parser.error("seeds 101 and 202 calibrate and evaluate: fit on another")
    levels = [x for x in args.level.split(",") if x]
    rng = np.random.default_rng(args.seed)
    counts = Counts()
    for i, level in enumerate(levels):
        sc = scenario(args.records, args.queries, level, seed=args.seed + i,
                      n_strangers=args.strangers)
        count(sc, rng, counts)
    table, kept = fit(counts)
    source = (f"Fitted by `python -m mash.matching.fit --seed {args.seed} --level {args.level}"
              f" --records {args.records} --queries {args.queries}` ({counts.true_pairs:,} "
              f"true pairs, {counts.non_pairs:,} random non-pairs for names, every record for"
              " dates and postcodes)")
    text = render(table, kept, source)
    print(text)
    doc = {"benchmark": "matching_weights",
           "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "machine": {"python": platform.python_version(), "machine": platform.machine()},
           "seed": args.seed, "levels": levels, "records": args.records,
           "queries": args.queries, "strangers": args.strangers,
           "true_pairs": counts.true_pairs, "random_non_pairs_names": counts.non_pairs,
           "counts": {name: {"true_pairs": counts.m[name].tolist(),
                             "non_pairs": counts.u[name].tolist(),
                             "levels": [_LEVEL_NAMES[name][i]
                                        for i in range(len(counts.m[name]))]}
                      for name in FITTED_FIELDS},
           "table": {name: {(_LEVEL_NAMES[name][lv] if name in _LEVEL_NAMES else str(lv)):
                            {"m": m, "u": u, "weight": round(float(np.log2(m / u)), 3)}
                            for lv, (m, u) in levels_.items()}
                     for name, levels_ in table.items()},
           "kept_by_hand": {name: [_LEVEL_NAMES[name][lv] for lv in lvls]
                            for name, lvls in kept.items()} | {name: "all" for name in KEPT}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    if args.write:
        write_table(Path(__file__).with_name("weights.py"), text)
        print(f"wrote the table to {Path(__file__).with_name('weights.py')}")
    print(f"figures in {out}")


if __name__ == "__main__":
    main()
