"""Prometheus metrics for the broker."""

from __future__ import annotations

from functools import cache

from prometheus_client import Counter, Gauge, Histogram

LOOKUPS = Counter("mash_broker_lookups_total", "Lookups by outcome", ["outcome"])
RETRIES = Counter("mash_broker_lookup_retries_total",
                  "Lookups a client retried here after another broker answered UNAVAILABLE")
ANSWERS = Counter("mash_broker_answers_total", "Agency answers by state and reason",
                  ["agency", "state", "reason"])
LOOKUP_SECONDS = Histogram(
    "mash_broker_lookup_seconds", "Time to answer a whole lookup",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
AGENCY_SECONDS = Histogram(
    "mash_broker_agency_answer_seconds", "Time for one agency's answer to arrive", ["agency"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
AGENTS_ONLINE = Gauge("mash_broker_agents_online", "Agents holding a stream to this broker")
AGENT_UNRESPONSIVE = Gauge(
    "mash_broker_agent_unresponsive",
    "1 while an agency's connected agent is taken as not answering (see liveness.py)",
    ["agency"])
LIVENESS_CHANGES = Counter(
    "mash_broker_agent_liveness_changes_total",
    "Agents taken as silent or not answering, and back to answering", ["agency", "to"])


# Labelled series, looked up once each rather than on every lookup (labels() takes a lock and
# checks its arguments). Every label value comes from the broker's configuration or from a
# fixed set, so these caches stay small.
@cache
def lookups(outcome: str) -> Counter:
    return LOOKUPS.labels(outcome)


@cache
def answers(agency: str, state: str, reason: str) -> Counter:
    return ANSWERS.labels(agency, state, reason)


@cache
def agency_seconds(agency: str) -> Histogram:
    return AGENCY_SECONDS.labels(agency)
