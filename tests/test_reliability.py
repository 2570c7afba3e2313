"""When agents hang, die or the broker restarts: NOT_CHECKED with a reason, never NOT_KNOWN."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from mash.v1 import answer_pb2
from tests.helpers import (
    Running,
    build_federation,
    lookup_request,
    processes,
    spawn,
    wait_until,
)

R = answer_pb2
pytestmark = pytest.mark.slow


@pytest.fixture
def fast_fed(tmp_path: Path):
    return build_federation(tmp_path / "fed", agencies=["police", "health", "csc", "education"],
                            broker_overrides={"deadline_seconds": 2, "heartbeat_seconds": 1})


async def _online(analyst, agencies: set[str], timeout: float = 30) -> None:
    for _ in range(int(timeout / 0.1)):
        try:
            status = {a.agency_id: a for a in (await analyst.agents()).agents}
            if all(status[a].online and status[a].ready for a in agencies):
                return
        except Exception:  # the broker may still be starting
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"agents {agencies} did not come online")


def _by_agency(response):
    return {a.agency_id: a for a in response.answers}


async def test_hanging_agent_times_out_and_the_rest_arrive(fast_fed) -> None:
    run = Running(fast_fed)
    await run.start_broker()
    analyst = run.analyst()
    with processes() as procs:
        procs += [spawn(fast_fed, "agent", a) for a in ("police", "health")]
        await _online(analyst, {"police", "health"})
        procs[1].signal(signal.SIGSTOP)  # health hangs: the socket stays open, nothing answers
        answers = _by_agency(await analyst.lookup(lookup_request()))
        assert answers["health"].state == R.ANSWER_STATE_NOT_CHECKED
        assert answers["health"].not_checked_reason == R.NOT_CHECKED_REASON_TIMED_OUT
        assert "did not answer within 2.0 s" in answers["health"].detail
        assert answers["police"].state == R.ANSWER_STATE_KNOWN
        procs[1].signal(signal.SIGCONT)
        # once it wakes, its late answer is dropped and the next lookup is answered
        answers = _by_agency(await analyst.lookup(lookup_request()))
        assert answers["health"].state == R.ANSWER_STATE_KNOWN
    await run.stop()


async def test_agent_killed_mid_lookup_is_not_checked(fast_fed) -> None:
    run = Running(fast_fed)
    await run.start_broker()
    analyst = run.analyst()
    with processes() as procs:
        procs += [spawn(fast_fed, "agent", a) for a in ("police", "health")]
        await _online(analyst, {"police", "health"})
        procs[0].signal(signal.SIGSTOP)
        lookup = asyncio.create_task(analyst.lookup(lookup_request()))
        # the broker is waiting on police's answer to this lookup's query
        await wait_until(lambda: bool((s := run.broker.registry.get("police")) and s.pending))
        procs[0].signal(signal.SIGKILL)
        answers = _by_agency(await lookup)
        assert answers["police"].state == R.ANSWER_STATE_NOT_CHECKED
        assert answers["police"].not_checked_reason in (
            R.NOT_CHECKED_REASON_AGENT_DISCONNECTED, R.NOT_CHECKED_REASON_TIMED_OUT)
        assert answers["health"].state == R.ANSWER_STATE_KNOWN
        # afterwards police is offline, said so, and still never NOT_KNOWN
        await wait_until(lambda: run.broker.registry.get("police") is None)
        answers = _by_agency(await analyst.lookup(lookup_request()))
        assert answers["police"].not_checked_reason == R.NOT_CHECKED_REASON_AGENT_OFFLINE
        # the agent restarts and is asked again
        procs.append(spawn(fast_fed, "agent", "police", tag="-2"))
        await _online(analyst, {"police"})
        answers = _by_agency(await analyst.lookup(lookup_request()))
        assert answers["police"].state == R.ANSWER_STATE_KNOWN
    await run.stop()


async def test_agents_reconnect_after_the_broker_restarts(fast_fed) -> None:
    run = Running(fast_fed)
    with processes() as procs:
        broker = spawn(fast_fed, "broker")
        procs.append(broker)
        procs += [spawn(fast_fed, "agent", a) for a in ("police", "education")]
        analyst = run.analyst()
        await _online(analyst, {"police", "education"})
        assert broker.stop() == 0  # SIGTERM: a clean exit
        procs.append(spawn(fast_fed, "broker", tag="-2"))
        await _online(analyst, {"police", "education"})
        answers = _by_agency(await analyst.lookup(lookup_request()))
        assert answers["police"].state == R.ANSWER_STATE_KNOWN
        assert answers["education"].state == R.ANSWER_STATE_KNOWN
        assert answers["health"].not_checked_reason == R.NOT_CHECKED_REASON_AGENT_OFFLINE
        for proc in procs[1:3]:
            assert proc.stop() == 0, proc.text()[-2000:]
            assert "broker_reconnect_wait" in proc.text()


async def test_in_process_agent_stop_is_seen_at_once(running: Running) -> None:
    await running.stop_agent("csc")
    answers = _by_agency(await running.analyst().lookup(lookup_request()))
    assert answers["csc"].not_checked_reason == R.NOT_CHECKED_REASON_AGENT_OFFLINE
