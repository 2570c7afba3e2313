"""Prometheus metrics for an agent, labelled by agency."""

from __future__ import annotations

from functools import cache

from prometheus_client import Counter, Gauge, Histogram

QUERIES = Counter("mash_agent_queries_total", "Queries answered, by answer state",
                  ["agency", "state"])
QUERY_SECONDS = Histogram(
    "mash_agent_query_seconds", "Time to answer one query at the agent", ["agency"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
CONNECTED = Gauge("mash_agent_connected", "How many brokers the agent holds a stream to",
                  ["agency"])
LINK_UP = Gauge("mash_agent_broker_link_up", "1 while the agent holds a stream to this broker",
                ["agency", "broker"])
RECORDS = Gauge("mash_agent_records", "Records loaded and indexed", ["agency"])
BATCH_QUERIES = Histogram(
    "mash_agent_batch_queries", "Queries answered together by one query thread (one audit "
    "transaction)", ["agency"], buckets=(1, 2, 4, 8, 16, 32))
READY = Gauge("mash_agent_ready", "1 while the agent has records it may answer from",
              ["agency"])
SNAPSHOT_STALE = Gauge(
    "mash_agent_snapshot_stale", "1 while the agent answers from an older load of its records "
    "because its latest load was refused", ["agency"])
DATA_AS_AT = Gauge("mash_agent_data_as_at_seconds",
                   "As-at time (Unix seconds) of the records the agent answers from", ["agency"])
LOADS_REFUSED = Counter(
    "mash_agent_loads_refused_total", "Loads of the sources refused (incomplete or "
    "implausible), by source and problem", ["agency", "source", "problem"])
LAST_LOAD_REFUSED = Gauge(
    "mash_agent_last_load_refused", "1 for the problem of the latest load while it stands "
    "refused, 0 once a load is accepted", ["agency", "problem"])
RECONNECTS = Counter("mash_agent_reconnects_total", "Connection attempts after a failure",
                     ["agency"])


# Labelled series for the per-query path, looked up once each rather than on every query
# (labels() takes a lock and checks its arguments); an agent has one agency and a few states.
@cache
def queries(agency: str, state: str) -> Counter:
    return QUERIES.labels(agency, state)


@cache
def query_seconds(agency: str) -> Histogram:
    return QUERY_SECONDS.labels(agency)


@cache
def batch_queries(agency: str) -> Histogram:
    return BATCH_QUERIES.labels(agency)
