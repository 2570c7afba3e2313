"""Brokers as real processes under load: kill -9 one, and restart each in turn.

Lookups fail over to the other broker under their lookup id; no agency is reported NOT_KNOWN
without its agent having searched (its own audit says so); every answered lookup is in a
broker's audit, with its answers; the agents keep serving the other broker throughout and
reconnect to the restarted one.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.failover_support import HaFederation, Load, _bodies, audit_figures, max_gap

AGENCIES = ["police", "health", "csc"]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _wait(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_kill_9_one_broker_under_load(tmp_path: Path) -> None:
    ha = HaFederation(tmp_path, AGENCIES, brokers=2, background=50)
    try:
        ha.start()
        with Load(ha.fed, workers=4) as load:
            _wait(lambda: load.answered_since(0) >= 20, 30)
            killed_at = time.monotonic()
            ha.kill(2)
            _wait(lambda: load.answered_since(killed_at) >= 20, 30)  # broker 1 serves alone
            ha.start_broker(2)
            ha.wait_serving(2)
            reconnect = ha.wait_agents(2, timeout=20)  # every agent is back at broker 2
            restarted_at = time.monotonic()
            _wait(lambda: load.answered_since(restarted_at) >= 30, 30)
            ended_at = time.monotonic()
    finally:
        ha.stop()
    outcomes = load.outcomes
    assert outcomes and not [o for o in outcomes if o.error]  # none failed after retries
    figures = audit_figures(ha.fed, AGENCIES, outcomes)
    assert figures["answered_without_audit"] == 0
    assert figures["not_known_unsearched"] == 0
    assert figures["not_known_answers"] > 0  # positive control: NOT_KNOWN answers were checked
    assert figures["retry_unaudited"] == 0
    # the agents served broker 1 throughout
    assert figures["not_checked_answers"] == 0, [(o.reasons, o.started - killed_at)
                                                 for o in outcomes if o.reasons][:10]
    assert max_gap(outcomes, killed_at, ended_at) < 5
    assert reconnect < 10
    # the restarted broker answers lookups again
    after = {o.lookup_id for o in outcomes if o.started > restarted_at}
    restarted = {e["lookup_id"] for e in _bodies(ha.fed.root / "audit" / "broker-2.db")
                 if e["event"] == "answers"}
    assert after & restarted


def test_rolling_restart_loses_no_lookup(tmp_path: Path) -> None:
    ha = HaFederation(tmp_path, AGENCIES, brokers=2, background=50)
    try:
        ha.start()
        with Load(ha.fed, workers=3) as load:
            _wait(lambda: load.answered_since(0) >= 10, 30)
            for n in (1, 2):
                ha.restart(n)
                ha.wait_agents(n, timeout=20)
                moment = time.monotonic()
                _wait(lambda m=moment: load.answered_since(m) >= 10, 30)
    finally:
        ha.stop()
    assert len(load.outcomes) >= 30
    assert not [o for o in load.outcomes if o.error]
    figures = audit_figures(ha.fed, AGENCIES, load.outcomes)
    assert figures["answered_without_audit"] == 0
    assert figures["not_known_unsearched"] == 0
    assert figures["retry_unaudited"] == 0
