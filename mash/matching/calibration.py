"""Choosing the match / possible thresholds from labelled synthetic data.

The possible threshold is the lowest score at which queries for people who are NOT in the
records still come back "known" no more often than the target false-known rate; the match
threshold is the lowest score at which a wrong person (for anyone asked about, held or not)
comes back as a match no more often than the target false-match rate. Calibrate on one
seed, evaluate on another (bench/accuracy.py) so the figures are not flattered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mash.matching.engine import Matcher, bands
from mash.matching.weights import Thresholds
from mash.synth.corrupt import Scenario

MIN_GAP = 3.0  # the match threshold is at least this far above the possible one


@dataclass
class Collected:
    """Best scores per query: of the true person, of anyone else, of anyone (strangers)."""

    true_best: list[float] = field(default_factory=list)  # -inf: the true record not blocked
    wrong_best: list[float] = field(default_factory=list)  # members' queries: anyone else
    stranger_best: list[float] = field(default_factory=list)


def _person_ids(matcher: Matcher, rows: np.ndarray) -> list[str]:
    return [matcher.records[int(r)].values.get("person_id", "") for r in rows]


def collect(matcher: Matcher, scenario: Scenario) -> Collected:
    out = Collected()
    for query, person_id in scenario.in_records:
        scored = matcher.scored(query)
        ids = np.array(_person_ids(matcher, scored.rows), dtype=object)
        mine = ids == person_id
        out.true_best.append(float(scored.total[mine].max()) if mine.any() else -np.inf)
        out.wrong_best.append(float(scored.total[~mine].max()) if (~mine).any() else -np.inf)
    for query in scenario.strangers:
        scored = matcher.scored(query)
        out.stranger_best.append(float(scored.total.max()) if len(scored.rows) else -np.inf)
    return out


def _threshold(scores: list[float], rate: float) -> float:
    """The lowest threshold at which at most ``rate`` of these best scores reach it."""
    ordered = np.sort(np.array(scores))[::-1]
    allowed = int(np.floor(rate * len(ordered)))
    if allowed >= len(ordered) or not np.isfinite(ordered[allowed]):
        return 0.0
    return float(ordered[allowed]) + 0.01


def choose(collected: Collected, records: int, target_false_known: float = 0.001,
           target_false_match: float = 0.0005) -> Thresholds:
    possible = _threshold(collected.stranger_best, target_false_known)
    match = _threshold(collected.wrong_best + collected.stranger_best, target_false_match)
    return Thresholds(match=round(max(match, possible + MIN_GAP), 2),
                      possible=round(possible, 2), records=records)


def wilson(events: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a rate of ``events`` in ``trials``: at a 0.1% target a
    handful of events decide the verdict, so a point estimate alone says little."""
    if trials <= 0:
        return (0.0, 1.0)
    p = events / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    scale = 1 + z * z / trials
    return (max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale))


def evaluate(matcher: Matcher, scenario: Scenario) -> dict[str, Any]:
    """Recall on people in the records, false-known rate on people who are not, and how
    often a query for someone held also brings back someone else; with the counts and 95%
    intervals of the two rates the target is about."""
    found = found_as_match = wrong_person = wrong_match = 0
    true_best: list[float] = []
    stranger_best: list[float] = []
    for query, person_id in scenario.in_records:
        scored = matcher.scored(query)
        band = bands(scored, matcher.weights, len(matcher))
        ids = np.array(_person_ids(matcher, scored.rows), dtype=object)
        mine = ids == person_id
        true_best.append(float(scored.total[mine].max()) if mine.any() else -np.inf)
        found += bool((band[mine] > 0).any())
        found_as_match += bool((band[mine] == 2).any())
        wrong_person += bool((band[~mine] > 0).any())
        wrong_match += bool((band[~mine] == 2).any())
    false_known = false_match = 0
    for query in scenario.strangers:
        scored = matcher.scored(query)
        band = bands(scored, matcher.weights, len(matcher))
        stranger_best.append(float(scored.total.max()) if len(scored.rows) else -np.inf)
        false_known += bool((band > 0).any())
        false_match += bool((band == 2).any())
    members, strangers = len(scenario.in_records), len(scenario.strangers)
    return {
        "queries_in_records": members,
        "queries_not_in_records": strangers,
        "found": found,
        "false_known": false_known,
        "recall": found / members,
        "recall_ci95": wilson(found, members),
        "false_known_ci95": wilson(false_known, strangers),
        "recall_as_match": found_as_match / members,
        "false_known_rate": false_known / strangers,
        "false_match_rate": false_match / strangers,
        "other_person_also_returned_rate": wrong_person / members,
        "other_person_as_match_rate": wrong_match / members,
        "operating_points": operating_points(
            true_best, stranger_best, matcher.weights.thresholds.at(len(matcher)).possible),
    }


def operating_points(true_best: list[float], stranger_best: list[float], possible: float,
                     offsets: tuple[float, ...] = (-2, -1, 0, 1, 2)) -> list[dict[str, float]]:
    """Recall and false-known rate had the possible threshold been ``offset`` bits away: the
    trade-off around the calibrated point (a candidate is returned when its score reaches
    the possible threshold, whatever the match band needs)."""
    held, strangers = np.array(true_best), np.array(stranger_best)
    return [{"possible_threshold": round(possible + o, 2),
             "recall": round(float((held >= possible + o).mean()), 4),
             "false_known_rate": round(float((strangers >= possible + o).mean()), 5)}
            for o in offsets]
