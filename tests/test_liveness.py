"""One silent agent must not slow every lookup to the deadline (issue 17, section 4).

Real agent processes on loopback with mTLS, made silent with SIGSTOP (the TCP stream and the
broker's session stay up; nothing is answered) and brought back with SIGCONT:

- health sends heartbeats every 0.5 s: after three missed it is taken as silent;
- csc sends them every 30 s, so only its unanswered queries can show it has stopped (this is
  the agent that holds its stream, heartbeats on time or not, but never answers): after two
  queries in a row time out it is taken as not answering;
- police is never stopped (the control within each lookup).

Before: every agency answers. While stopped: once marked, a lookup returns at once with
NOT_CHECKED (agent unresponsive) for the stopped agencies and police's answer as before,
and the broker's agent status, metrics and `mash agents` say so. After SIGCONT: each is
routed again and answers as before.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from mash.v1 import answer_pb2
from tests.helpers import Running, build_federation, lookup_request, processes, spawn

R = answer_pb2
pytestmark = pytest.mark.slow
DEADLINE = 2.5


@pytest.fixture
def fed(tmp_path: Path):
    fed = build_federation(
        tmp_path / "fed", agencies=["police", "health", "csc"],
        broker_overrides={"deadline_seconds": DEADLINE, "heartbeat_seconds": 1,
                          "liveness": {"missed_heartbeats": 3, "missed_answers": 2}})
    for agency, beat in (("health", 0.5), ("csc", 30), ("police", 1)):
        path = fed.agent_configs[agency]
        cfg = yaml.safe_load(path.read_text())
        cfg["broker"]["heartbeat_seconds"] = beat
        path.write_text(yaml.safe_dump(cfg))
    return fed


async def _status(analyst) -> dict[str, object]:
    return {a.agency_id: a for a in (await analyst.agents()).agents}


async def _until(analyst, check, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = await _status(analyst)
            if check(status):
                return status
        except Exception:  # the broker may still be starting
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


def _states(response) -> dict[str, tuple[int, int]]:
    return {a.agency_id: (a.state, a.not_checked_reason) for a in response.answers}


def _agents_page(response) -> str:
    """The console's agents page for this status (its own template and view code)."""
    import datetime as dt

    import jinja2

    from mash.console import views

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(
        Path(views.__file__).parent / "templates"), autoescape=True)
    return env.get_template("agents.html").render(
        agents=views.agents_view(response), checked_at=dt.datetime.now(dt.UTC),
        session=None, path="/agents")


def _unresponsive_gauge(agency: str) -> float | None:
    return REGISTRY.get_sample_value("mash_broker_agent_unresponsive", {"agency": agency})


async def test_a_silent_agent_is_answered_at_once_and_routed_again_when_it_answers(fed) -> None:
    run = Running(fed)
    await run.start_broker()
    analyst = run.analyst()
    stopped = ("health", "csc")
    with processes() as procs:
        agents = {a: spawn(fed, "agent", a) for a in ("police", *stopped)}
        procs += agents.values()
        await _until(analyst, lambda s: all(s[a].online and s[a].ready for a in agents), 180)
        # positive control: every agency answers, nobody is taken as unresponsive
        before = _states(await analyst.lookup(lookup_request()))
        assert all(state != R.ANSWER_STATE_NOT_CHECKED for state, _ in before.values()), before
        assert not any(s.unresponsive for s in (await _status(analyst)).values())

        for agency in stopped:
            agents[agency].signal(signal.SIGSTOP)
        # health misses three heartbeats (1.5 s); csc is found out by its unanswered queries
        timed_out = _states(await analyst.lookup(lookup_request()))
        assert timed_out["csc"] == (R.ANSWER_STATE_NOT_CHECKED, R.NOT_CHECKED_REASON_TIMED_OUT)
        status = await _until(analyst, lambda s: s["health"].unresponsive)
        assert "heartbeats of 0.5 s missed" in status["health"].unresponsive_reason
        assert status["health"].online and status["health"].HasField("unresponsive_since")
        assert not status["csc"].unresponsive  # one timeout is not enough
        second = _states(await analyst.lookup(lookup_request()))
        assert second["csc"] == (R.ANSWER_STATE_NOT_CHECKED, R.NOT_CHECKED_REASON_TIMED_OUT)
        status = await _status(analyst)
        assert status["csc"].unresponsive
        assert "last 2 queries went unanswered" in status["csc"].unresponsive_reason

        started = time.monotonic()
        response = await analyst.lookup(lookup_request())
        took = time.monotonic() - started
        assert took < DEADLINE / 2, f"the lookup waited {took:.2f} s for silent agents"
        answers = {a.agency_id: a for a in response.answers}
        for agency in stopped:
            assert answers[agency].state == R.ANSWER_STATE_NOT_CHECKED
            assert answers[agency].not_checked_reason == \
                R.NOT_CHECKED_REASON_AGENT_UNRESPONSIVE
            assert "has not answered since" in answers[agency].detail
        assert _states(response)["police"] == before["police"]  # the rest as before
        assert _unresponsive_gauge("health") == 1 and _unresponsive_gauge("csc") == 1
        assert _unresponsive_gauge("police") in (None, 0)
        # what people see: `mash agents` (the real CLI) and the console's agents page
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mash", "agents", "--config", str(fed.client_config),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "200"})
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        rows = {line.split("│")[1].strip(): line for line in out.decode().splitlines()
                if line.count("│") > 3}
        assert proc.returncode == 0, err
        assert "NOT ANSWERING" in rows[status["csc"].agency_name], out.decode()
        assert "NOT ANSWERING" not in rows[status["police"].agency_name]
        page = _agents_page(await analyst.agents())
        assert page.count("NOT ANSWERING since") == 2 and "answered NOT CHECKED at once" in page

        for agency in stopped:
            agents[agency].signal(signal.SIGCONT)
        # csc answers the queries it was sent (late) and health heartbeats (or, having
        # missed the broker's heartbeats itself, reconnects): both are back
        await _until(analyst, lambda s: all(s[a].online and s[a].ready and not s[a].unresponsive
                                            for a in stopped), 20)
        after = _states(await analyst.lookup(lookup_request()))
        assert after == before
        assert _unresponsive_gauge("health") == 0 and _unresponsive_gauge("csc") == 0
    await run.stop()
    log = (fed.root / "csc.log").read_text(errors="replace")
    assert "Traceback" not in log


def test_liveness_rules_and_the_probe() -> None:
    """The state machine alone (a fake clock): what marks an agent, what clears it."""
    import datetime as dt

    from mash.broker.liveness import NOT_ANSWERING, SILENT, Liveness, LivenessConfig

    now = [0.0]
    changes: list[object] = []
    live = Liveness(config=LivenessConfig(missed_heartbeats=3, missed_answers=2),
                    heartbeat_seconds=1.0, clock=lambda: now[0], on_change=changes.append)
    now[0] = 2.9
    assert live.state() is None
    now[0] = 3.1
    state = live.state()
    assert state is not None and state.kind == SILENT
    assert not live.take_probe("q1")  # a silent agent needs no probe: a heartbeat will do
    live.heard()
    assert live.state() is None
    sent = dt.datetime.now(dt.UTC)
    live.timed_out(sent)
    assert live.state() is None  # one is not enough
    live.heard()  # heartbeats do not clear unanswered queries...
    live.timed_out(sent)
    state = live.state()
    assert state is not None and state.kind == NOT_ANSWERING and state.since == sent
    live.heard()
    assert live.state() is not None  # ... still not answering
    assert live.take_probe("q2") and not live.take_probe("q3")  # one probe at a time
    live.probe_done("q2")
    assert live.take_probe("q3")
    assert not live.answer_counts("made-up", delivered=False)  # an answer to nothing: no
    live.timed_out(sent, "q4")
    assert live.answer_counts("q4", delivered=False)  # a late answer to a real query: yes
    assert not live.answer_counts("q4", delivered=False)  # (once)
    live.answered()  # ... and an answer brings it back
    assert live.state() is None
    assert [c.kind if c else None for c in changes] == [SILENT, None, NOT_ANSWERING, None]
