"""Bad loads through a real broker and real agent processes: a lookup during a refused reload
still finds the person the agency holds; an agent with no good load is not ready and
answers NOT_CHECKED (data unavailable), so `mash lookup` exits 3; a database error quoting an
NHS number reaches neither the agent's log nor the analyst."""

from __future__ import annotations

import asyncio
import csv
import json
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mash.answers import from_timestamp
from mash.demo.federation import Federation, free_port
from mash.v1 import answer_pb2
from tests.helpers import AsyncAnalyst, Running, build_federation, lookup_request, processes, spawn

R = answer_pb2
pytestmark = pytest.mark.slow
MASH = [sys.executable, "-m", "mash"]
LEAH = ["--name", "Leah Thompson", "--dob", "2014-05-17", "--postcode", "LS9 8AB",
        "--purpose", "child_safeguarding", "--stage", "research", "--case", "MASH-2026-7",
        "--reason", "School referral about bruising", "--json"]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
PERSONAL = ["Leah", "Thompson", "2014-05-17", "17/05/2014", "LS9 8AB", "Darren"]


def police_federation(root: Path, **police: Any) -> Federation:
    return build_federation(root, agencies=["police"],
                            broker_overrides={"heartbeat_seconds": 1},
                            agent_overrides={"police": police})


def police_csv(fed: Federation) -> Path:
    return Path(yaml.safe_load(fed.agent_configs["police"].read_text())["sources"][0]["path"])


def rewrite_in_place(path: Path, text: str) -> None:
    """What a nightly export does: truncate the file it is given and write it again."""
    with path.open("r+", newline="") as fh:
        fh.truncate(0)
        fh.write(text)


def csv_lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


async def police_status(analyst: AsyncAnalyst) -> Any:
    try:
        return {a.agency_id: a for a in (await analyst.agents()).agents}["police"]
    except grpc.aio.AioRpcError:
        return None  # the broker is still starting


async def wait_status(analyst: AsyncAnalyst, check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await police_status(analyst)
        if status is not None and status.online and check(status):
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"police's status never satisfied the check: {status}")


async def police_answer(analyst: AsyncAnalyst) -> answer_pb2.AgencyAnswer:
    response = await analyst.lookup(lookup_request())
    return {a.agency_id: a for a in response.answers}["police"]


async def mash_lookup(fed: Federation) -> tuple[int, dict[str, Any], str]:
    proc = await asyncio.create_subprocess_exec(
        *MASH, "lookup", *LEAH, "--config", str(fed.client_config),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    police = {a["agency_id"]: a for a in json.loads(out)["answers"]}["police"] if out else {}
    return proc.returncode, police, err.decode()


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return reply.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} in the metrics")


async def health(port: int, service: str) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5)
        return reply.status


def assert_no_personal_data(text: str, values: list[str], where: str) -> None:
    for value in values:
        assert not re.search(re.escape(value), text, re.IGNORECASE), f"{value!r} in {where}"


async def test_a_lookup_during_a_bad_reload_still_finds_the_held_person(tmp_path: Path) -> None:
    metrics_port, health_port = free_port(), free_port()
    fed = police_federation(tmp_path / "fed", index={"path": str(tmp_path / "police.index"),
                                                     "refresh_seconds": 0.3},
                            metrics_port=metrics_port, health_listen=f"127.0.0.1:{health_port}")
    data = police_csv(fed)
    full = csv_lines(data)
    analyst = Running(fed).analyst()
    with processes() as procs:
        procs.append(spawn(fed, "broker"))
        procs.append(spawn(fed, "agent", "police"))
        await wait_status(analyst, lambda s: s.ready, timeout=180)  # a busy host starts slowly

        # Positive control: before the bad reload, the person is found.
        before = await police_answer(analyst)
        assert before.state == R.ANSWER_STATE_KNOWN and not before.warnings
        as_at = from_timestamp(before.data_as_at)

        # The nightly export is cut short: the header and the last 50 rows (Leah is first).
        rewrite_in_place(data, "".join([full[0], *full[-50:]]))
        status = await wait_status(analyst, lambda s: s.data_status.stale)
        assert status.ready and status.data_status.refused_problem == "shrank"
        assert "fewer than the last good load" in status.data_status.refused_detail
        assert from_timestamp(status.data_as_at) == as_at

        during = await police_answer(analyst)
        assert during.state == R.ANSWER_STATE_KNOWN
        assert from_timestamp(during.data_as_at) == as_at  # the old as-at time, not now
        assert any("a newer load was not used (shrank)" in w for w in during.warnings)
        text = scrape(metrics_port)
        assert metric(text, "mash_agent_snapshot_stale", agency="police") == 1
        assert metric(text, "mash_agent_loads_refused_total", agency="police",
                      source="niche_rms", problem="shrank") >= 1
        assert metric(text, "mash_agent_last_load_refused", agency="police",
                      problem="shrank") == 1
        assert metric(text, "mash_agent_ready", agency="police") == 1
        assert await health(health_port, "mash.v1.AgentData") == NOT_SERVING
        assert await health(health_port, "mash.v1.Agent") == SERVING
        agents = subprocess.run([*MASH, "agents", "--config", str(fed.client_config)],
                                capture_output=True, text=True, timeout=60,
                                env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
        assert "STALE: shrank" in agents.stdout, agents.stdout + agents.stderr

        # The export completes: the full file and one more row, accepted, no longer stale.
        rewrite_in_place(data, "".join([*full, full[-1].replace(",", "X,", 1)]))
        status = await wait_status(analyst, lambda s: not s.data_status.stale)
        assert not status.data_status.refused_problem
        after = await police_answer(analyst)
        assert after.state == R.ANSWER_STATE_KNOWN and not after.warnings
        assert from_timestamp(after.data_as_at) > as_at
        assert metric(scrape(metrics_port), "mash_agent_snapshot_stale", agency="police") == 0
        assert await health(health_port, "mash.v1.AgentData") == SERVING
        for proc in procs:
            assert proc.stop() == 0
        log = procs[1].text()
    assert '"event": "sources_refused"' in log and '"problem": "shrank"' in log
    assert_no_personal_data(log, PERSONAL, "the agent's log")


async def test_an_agent_started_on_a_header_only_file_is_not_ready(tmp_path: Path) -> None:
    health_port = free_port()
    fed = police_federation(tmp_path / "fed", index={"refresh_seconds": 0.3},
                            health_listen=f"127.0.0.1:{health_port}")
    data = police_csv(fed)
    full = data.read_text()
    analyst = Running(fed).analyst()
    with processes() as procs:
        procs.append(spawn(fed, "broker"))
        procs.append(spawn(fed, "agent", "police"))
        await wait_status(analyst, lambda s: s.ready, timeout=180)  # a busy host starts slowly
        code, police, err = await mash_lookup(fed)  # positive control: every agency answered
        assert code == 0 and police["state"] == "ANSWER_STATE_KNOWN", err
        assert procs[1].stop() == 0

        rewrite_in_place(data, full.splitlines(keepends=True)[0])  # the header, no rows
        procs.append(spawn(fed, "agent", "police", tag="-2"))
        status = await wait_status(analyst, lambda s: s.data_status.refused_problem)
        assert not status.ready and status.record_count == 0
        assert status.data_status.refused_problem == "too_few_records"
        code, police, err = await mash_lookup(fed)
        assert code == 3, err
        assert police["state"] == "ANSWER_STATE_NOT_CHECKED"
        assert police["not_checked_reason"] == "NOT_CHECKED_REASON_DATA_UNAVAILABLE"
        assert "fewer than min_records (1)" in police["detail"]
        assert await health(health_port, "") == NOT_SERVING

        data.write_text(full)  # the export arrives: the agent's retry loads it
        await wait_status(analyst, lambda s: s.ready, timeout=180)  # a busy host starts slowly
        code, police, err = await mash_lookup(fed)
        assert code == 0 and police["state"] == "ANSWER_STATE_KNOWN", err


PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NHS = "9434765919"


@pytest.mark.postgres
async def test_a_database_error_quoting_an_nhs_number_reaches_no_log_or_answer(
        tmp_path: Path) -> None:
    import sqlalchemy as sa

    schema = f"mash_snap_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(PG_URL)
    probe = build_federation(tmp_path / "probe", agencies=["police"])
    police = yaml.safe_load(probe.agent_configs["police"].read_text())["sources"][0]
    with police_csv(probe).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    columns = list(rows[0])
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        conn.execute(sa.text(f"CREATE TABLE {schema}.people "
                             f"({', '.join(c + ' TEXT' for c in columns)}, code TEXT)"))
        conn.execute(sa.text(f"INSERT INTO {schema}.people VALUES "
                             f"({', '.join(':' + c for c in columns)}, '1')"), rows)
    query = f"SELECT * FROM {schema}.people WHERE CAST(code AS integer) > 0"
    source = {k: v for k, v in police.items() if k != "path"} | {
        "type": "sql", "url": PG_URL, "query": query}
    fed = police_federation(tmp_path / "fed", sources=[source], log_level="debug",
                            index={"refresh_seconds": 0.3})
    analyst = Running(fed).analyst()

    def set_code(value: str) -> None:
        with engine.begin() as conn:  # on Leah's row, with a new row for the agent to see
            conn.execute(sa.text(f"UPDATE {schema}.people SET code = :v WHERE forename = "
                                 "'Leah'"), {"v": value})
            conn.execute(sa.text(f"INSERT INTO {schema}.people (person_ref, surname, code) "
                                 f"VALUES ('{uuid.uuid4().hex[:8]}', 'Lee', '1')"))

    try:
        with processes() as procs:
            procs.append(spawn(fed, "broker"))
            procs.append(spawn(fed, "agent", "police"))
            await wait_status(analyst, lambda s: s.ready, timeout=180)  # a busy host starts slowly
            assert (await police_answer(analyst)).state == R.ANSWER_STATE_KNOWN

            set_code(NHS)  # now the query fails, and PostgreSQL's message quotes the value
            with engine.connect() as conn, pytest.raises(sa.exc.DataError) as raw:
                conn.execute(sa.text(query)).fetchall()
            assert NHS in str(raw.value)  # positive control: the raw error carries it
            status = await wait_status(analyst, lambda s: s.data_status.stale)
            assert status.data_status.refused_problem == "database_error"
            assert "SQLSTATE 22003" in status.data_status.refused_detail
            assert NHS not in status.data_status.refused_detail
            during = await police_answer(analyst)  # the last good load still answers
            assert during.state == R.ANSWER_STATE_KNOWN

            # A restart while the query fails: no good load, NOT_CHECKED with the reason.
            assert procs[1].stop() == 0
            procs.append(spawn(fed, "agent", "police", tag="-2"))
            await wait_status(analyst, lambda s: not s.ready and s.data_status.refused_problem)
            answer = await police_answer(analyst)
            assert answer.state == R.ANSWER_STATE_NOT_CHECKED
            assert answer.not_checked_reason == R.NOT_CHECKED_REASON_DATA_UNAVAILABLE
            assert "SQLSTATE 22003" in answer.detail and "NumericValueOutOfRange" in answer.detail
            assert NHS not in answer.detail

            set_code("1")  # fixed at source: the agent's retry loads it
            await wait_status(analyst, lambda s: s.ready, timeout=180)  # a busy host starts slowly
            assert (await police_answer(analyst)).state == R.ANSWER_STATE_KNOWN
            for proc in procs:
                assert proc.stop() == 0
            logs = {f"{proc.name}{i}": proc.text() for i, proc in enumerate(procs)}
        assert '"problem": "database_error"' in logs["police1"]
        for name, text in logs.items():
            assert_no_personal_data(text, [NHS, *PERSONAL], f"the {name} log")
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


def test_agent_check_reports_whether_the_agent_would_answer_from_each_load(
        tmp_path: Path) -> None:
    from mash.agent import config as agent_config
    from mash.agent.state import AgentState

    fed = police_federation(tmp_path / "fed", index={"path": str(tmp_path / "police.index")})
    data = police_csv(fed)
    lines = csv_lines(data)

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run([*MASH, "agent", "check", "--config",
                               str(fed.agent_configs["police"])],
                              capture_output=True, text=True, timeout=60)

    first = check()
    assert first.returncode == 0, first.stderr
    assert "plausible" in first.stdout and "no last good load on record" in first.stdout
    cfg = agent_config.load(fed.agent_configs["police"])
    assert AgentState().load(cfg.sources, cfg.index_path).refusal is None  # as serve would
    again = check()
    assert again.returncode == 0 and f"the last good load's {len(lines) - 1} records" in (
        again.stdout)

    data.write_text("".join([lines[0], *lines[-20:]]))
    shrunk = check()
    assert shrunk.returncode == 1
    assert "REFUSED (shrank)" in shrunk.stdout and "--accept-shrink" in shrunk.stdout
    error = [line for line in shrunk.stderr.splitlines() if line.strip()]
    assert len(error) == 1 and error[0].startswith("mash: error: ") and "niche_rms" in error[0]

    data.write_text(lines[0])
    empty = check()
    assert empty.returncode == 1 and "REFUSED (too_few_records)" in empty.stdout
    data.unlink()
    data.mkdir()  # there, but not a file the agent can read
    unreadable = check()
    assert unreadable.returncode == 1 and "REFUSED (unreadable)" in unreadable.stdout
    assert "Traceback" not in unreadable.stderr
