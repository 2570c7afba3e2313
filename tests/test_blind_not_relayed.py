"""Blind mode: a broker that drops an agency's sealed answer cannot make the agency vanish
(issue 17, section 4).

A real broker process (tests/dropping_broker.py: the real broker, with its blind rounds'
sealed answers for one named agency left out) relays between real agents (mTLS, Rego,
signed and sealed answers) and the real `mash lookup` CLI with a blind client config. The
analyst's side knows from the signed key directory which agencies should answer, and shows
each one missing as NOT_CHECKED (no answer relayed), exit code 3. Positive control: with
nothing dropped, the same lookup has every agency's own answer and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from tests.helpers import Running, build_federation, processes

pytestmark = pytest.mark.slow
AGENTS = ["police", "health", "csc"]
LEAH = ["--name", "Leah Thompson", "--dob", "2014-05-17", "--postcode", "LS9 8AB"]
STRANGER = ["--name", "Zebedee Quinlan-Farthing", "--dob", "2013-06-14", "--postcode",
            "YO1 7HH"]


async def mash_lookup(fed, subject: list[str]) -> tuple[int, dict[str, dict], str]:
    args = [sys.executable, "-m", "mash", "lookup", "--config", str(fed.blind_client_config),
            *subject, "--purpose", "child_safeguarding", "--stage", "research", "--case",
            "MASH-BLIND-1", "--reason", "Blind lookup through a dropping broker", "--json",
            *[x for a in AGENTS for x in ("--agency", a)]]
    proc = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    answers = {a["agency_id"]: a for a in json.loads(out or b"{}").get("answers", [])}
    return proc.returncode, answers, err.decode()


def _spawn_broker(fed, drop_file: Path) -> subprocess.Popen[bytes]:
    log = (fed.root / "broker.log").open("ab")
    env = {**os.environ, "MASH_TEST_DROP_FILE": str(drop_file)}
    return subprocess.Popen([sys.executable, "-m", "tests.dropping_broker", "--config",
                             str(fed.broker_config)], stdout=log, stderr=log, env=env,
                            cwd=Path(__file__).resolve().parents[1])


async def test_a_dropped_sealed_answer_is_shown_as_not_relayed(tmp_path: Path) -> None:
    fed = build_federation(tmp_path / "fed", agencies=AGENTS)
    drop = tmp_path / "drop"
    drop.write_text("")
    broker = _spawn_broker(fed, drop)
    run = Running(fed)
    with processes():
        try:
            agents = [await run.start_agent(agency, wait=False) for agency in AGENTS]
            await asyncio.gather(*(agent.wait_ready(timeout=180) for agent in agents))
            analyst = run.analyst()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # until every agent is connected and ready
                with contextlib.suppress(grpc.RpcError):
                    status = (await analyst.agents()).agents
                    if all(a.online and a.ready for a in status if a.agency_id in AGENTS):
                        break
                await asyncio.sleep(0.2)
            code, answers, err = await mash_lookup(fed, LEAH)
            # positive control: nothing dropped, every agency's own signed answer
            assert code == 0, (answers, err)
            assert {a: answers[a]["state"] for a in AGENTS} == {
                a: "ANSWER_STATE_KNOWN" for a in AGENTS}

            for round_ in (1, 2):  # police's sealed answer dropped in round one, then two
                drop.write_text(f"police {round_}")
                code, answers, err = await mash_lookup(fed, LEAH)
                assert code == 3, (round_, answers, err)
                police = answers["police"]
                assert police["state"] == "ANSWER_STATE_NOT_CHECKED", (round_, police)
                assert police["not_checked_reason"] == "NOT_CHECKED_REASON_NOT_RELAYED"
                assert "relayed" in police["detail"]
                for agency in ("health", "csc"):  # the others arrive as before
                    assert answers[agency]["state"] == "ANSWER_STATE_KNOWN", (round_, agency)

            # an agency that does not hold the person answers (signed NOT_KNOWN) in round
            # one only: dropped there, it is not shown as not known either
            drop.write_text("")
            code, answers, _ = await mash_lookup(fed, STRANGER)
            assert code == 0 and answers["police"]["state"] == "ANSWER_STATE_NOT_KNOWN"
            drop.write_text("police 1")
            code, answers, _ = await mash_lookup(fed, STRANGER)
            assert code == 3
            assert answers["police"]["not_checked_reason"] == "NOT_CHECKED_REASON_NOT_RELAYED"
            assert all(answers[a]["state"] == "ANSWER_STATE_NOT_KNOWN" for a in ("health",
                                                                                  "csc"))
        finally:
            await run.stop()
            broker.terminate()
            broker.wait(10)
