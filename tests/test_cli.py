"""The `mash` command: readable output, one-line errors, documented exit codes."""

from __future__ import annotations

import asyncio
import csv
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mash.demo.run import ONLINE_TIMEOUT
from tests.helpers import Running

MASH = [sys.executable, "-m", "mash"]
LEAH = ["--name", "Leah Thompson", "--dob", "2014-05-17", "--postcode", "LS9 8AB",
        "--purpose", "child_safeguarding", "--stage", "research", "--case", "MASH-2026-1",
        "--reason", "School referral about bruising", "--urgency", "red"]


async def mash(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *MASH, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={"COLUMNS": "160", "PATH": "/usr/bin:/bin", **(env or {})})
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


# the demo waits up to ONLINE_TIMEOUT for its agents to calibrate, and then runs lookups
DEMO_TIMEOUT = ONLINE_TIMEOUT + 120


def run_mash(*args: str) -> tuple[int, str, str]:
    result = subprocess.run([*MASH, *args], capture_output=True, text=True)
    return result.returncode, result.stdout, result.stderr


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("mash: error: ") and "Traceback" not in err
    return lines[0]


async def test_lookup_prints_a_table_and_exits_3_when_some_not_checked(running: Running) -> None:
    code, out, err = await mash("lookup", *LEAH, "--config", str(running.fed.client_config))
    assert code == 3, err
    assert "KNOWN" in out and "NOT CHECKED" in out and "DA victim" in out
    assert "NOT the same as not known" in out
    assert "NOT CHECKED" in err


async def test_lookup_exits_0_when_every_agency_answered(running: Running) -> None:
    code, out, _ = await mash("lookup", *LEAH, "--agency", "police", "--agency", "health",
                              "--config", str(running.fed.client_config))
    assert code == 0
    assert "West Yorkshire Police" in out


async def test_lookup_json(running: Running) -> None:
    code, out, _ = await mash("lookup", *LEAH, "--json", "--config",
                              str(running.fed.client_config))
    assert code == 3
    response = json.loads(out)
    states = {a["agency_id"]: a["state"] for a in response["answers"]}
    assert states["police"] == "ANSWER_STATE_KNOWN"
    assert states["housing"] == "ANSWER_STATE_NOT_CHECKED"


async def test_token_from_environment(running: Running) -> None:
    code, _, err = await mash("lookup", *LEAH, "--config", str(running.fed.client_config),
                              env={"MASH_TOKEN": "not-a-token"})
    assert code == 4
    assert "unauthenticated: analyst token is malformed" in one_error_line(err)


async def test_server_side_validation_is_one_line_exit_2(running: Running) -> None:
    args = [a if a != "LS9 8AB" else "XX" for a in LEAH]
    code, _, err = await mash("lookup", *args, "--config", str(running.fed.client_config))
    assert code == 2
    assert "invalid_argument" in one_error_line(err) and "not a UK postcode" in err


async def test_agents_command(running: Running) -> None:
    code, out, _ = await mash("agents", "--json", "--config", str(running.fed.client_config))
    assert code == 0
    agents = {a["agency_id"]: a for a in json.loads(out)["agents"]}
    assert agents["police"]["online"] is True
    police = agents["police"]["record_count"]
    assert isinstance(police, int) and police > 0
    # defaults are emitted: an offline agency says so rather than leaving the key out
    assert agents["housing"]["online"] is False and agents["housing"]["record_count"] == 0


def test_bad_date_is_one_line_exit_2(fed) -> None:
    args = [a if a != "2014-05-17" else "2014-02-30" for a in LEAH]
    code, _, err = run_mash("lookup", *args, "--config", str(fed.client_config))
    assert code == 2
    assert "not a calendar date" in one_error_line(err)


def test_unreachable_broker_exits_5(fed, tmp_path: Path) -> None:
    cfg = yaml.safe_load(fed.client_config.read_text())
    cfg["broker"]["address"] = "127.0.0.1:1"
    path = tmp_path / "client.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code, _, err = run_mash("lookup", *LEAH, "--config", str(path), "--timeout", "2")
    assert code == 5
    assert "unreachable" in one_error_line(err)


def test_missing_config_is_one_line(tmp_path: Path) -> None:
    code, _, err = run_mash("broker", "serve", "--config", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "file not found" in one_error_line(err)


def test_misspelt_setting_is_named(fed, tmp_path: Path) -> None:
    cfg = yaml.safe_load(fed.broker_config.read_text())
    cfg["deadline_secs"] = 3
    path = tmp_path / "broker.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code, _, err = run_mash("broker", "serve", "--config", str(path))
    assert code == 2
    assert "unknown setting 'deadline_secs'" in one_error_line(err)


def test_a_broker_whose_port_is_taken_says_so_in_one_line(fed, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cfg = yaml.safe_load(fed.broker_config.read_text())
        cfg["listen"] = f"127.0.0.1:{taken.getsockname()[1]}"
        path = tmp_path / "broker.yaml"
        path.write_text(yaml.safe_dump(cfg))
        code, _, err = run_mash("broker", "serve", "--config", str(path))
    assert code != 0 and "Traceback" not in err
    # after the structured log lines of starting up, one line saying why it stopped
    assert err.strip().splitlines()[-1].startswith("mash: error: cannot listen on 127.0.0.1:")


def test_no_client_config(tmp_path: Path) -> None:
    code, _, err = run_mash("lookup", *LEAH)
    assert code == 2
    assert "no client config" in one_error_line(err)


def test_certs_and_tokens(tmp_path: Path) -> None:
    d = str(tmp_path / "certs")
    assert run_mash("certs", "init", "--dir", d)[0] == 0
    code, _, err = run_mash("certs", "init", "--dir", d)
    assert code != 0 and "already exists" in one_error_line(err)
    code, out, _ = run_mash("certs", "issue", "--agency", "police", "--dir", d)
    assert code == 0 and "police-agent.pem" in out
    code, out, _ = run_mash("certs", "show", str(tmp_path / "certs" / "police-agent.pem"))
    assert "spiffe://mash.exchange/agency/police/agent" in out
    code, _, err = run_mash("certs", "issue", "--agency", "Police Force", "--dir", d)
    assert code != 0 and "not valid" in one_error_line(err)
    key = str(tmp_path / "idp.key")
    assert run_mash("token", "keygen", "--out", key, "--algorithm", "EdDSA")[0] == 0
    code, out, _ = run_mash("token", "issue", "--key", key, "--issuer", "https://idp",
                            "--subject", "a.analyst", "--agency", "mash", "--ttl", "30m")
    assert code == 0 and out.count(".") == 2
    code, _, err = run_mash("token", "issue", "--key", key, "--issuer", "x", "--subject", "a",
                            "--agency", "mash", "--ttl", "forever")
    assert code == 2 and "not like 30m" in one_error_line(err)


def test_agent_check_reports_counts(fed, tmp_path: Path) -> None:
    """The counts are the file's: every row read, the good ones as records, each rejection
    and warning by its reason (three rows added here: two rejected, one with a bad date)."""
    cfg = yaml.safe_load(fed.agent_configs["police"].read_text())
    source = Path(cfg["sources"][0]["path"])
    with source.open(newline="", encoding="utf-8") as fh:
        held = sum(1 for _ in csv.DictReader(fh))
    assert held > 10
    extract = tmp_path / "police.csv"
    extract.write_text(source.read_text(encoding="utf-8")
                       + ",Nobody,,Atall,,01/01/2010,Male,LS1 1AA,,,,,,,N\n"  # no record id
                       + "NCH0000001,Bad,,Date,,31/02/2014,Male,LS1 1AA,,,,,,,N\n"
                       + "NCH0000002,,,,,,,,,,,,,,N\n",  # nobody: no name, no identifier
                       encoding="utf-8")
    cfg["sources"][0]["path"] = str(extract)
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump(cfg))
    code, out, err = run_mash("agent", "check", "--config", str(config))
    assert code == 0, err
    assert f"niche_rms: {held + 3} rows, {held + 1} records, 2 rejected, as at " in out
    assert "  rejected 1: record_id is empty" in out
    assert "  rejected 1: no name and no identifier" in out
    assert "  warning 1: date_of_birth unparseable" in out
    assert f"match index: {held + 1} records" in out


@pytest.mark.slow
@pytest.mark.timeout(DEMO_TIMEOUT)
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    code, out, err = run_mash("demo", "--dir", str(tmp_path / "demo"))
    assert code == 0, out[-3000:] + err[-3000:]
    assert "Answer states shown: KNOWN, NOT_CHECKED, NOT_KNOWN, WITHHELD" in out
    assert "Stopped the broker and agents cleanly." in out
    assert not (tmp_path / "demo").exists()


@pytest.mark.slow
@pytest.mark.timeout(DEMO_TIMEOUT)
def test_demo_with_two_brokers_survives_one_killed(tmp_path: Path) -> None:
    code, out, err = run_mash("demo", "--brokers", "2", "--dir", str(tmp_path / "demo"))
    assert code == 0, out[-3000:] + err[-3000:]
    assert "Started 2 brokers on" in out
    assert "with SIGKILL." in out and "Answered by the broker still up" in out
    assert "Stopped the broker and agents cleanly." in out


def test_agent_check_fails_when_the_policy_is_not_loaded(fed, tmp_path: Path) -> None:
    """An agent that would share nothing is not a passing check: exit 1 and one error line
    saying so. Positive control: the same config with its bundle passes."""
    code, out, err = run_mash("agent", "check", "--config", str(fed.agent_configs["police"]))
    assert code == 0, err
    assert "policy: revision" in out
    cfg = yaml.safe_load(fed.agent_configs["police"].read_text())
    cfg["policy"]["bundle"] = str(tmp_path / "no-such-bundle.json")
    cfg["policy"]["state_file"] = str(tmp_path / "state.json")  # no last good bundle either
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump(cfg))
    code, out, err = run_mash("agent", "check", "--config", str(config))
    assert code == 1, out + err
    assert "policy: NOT loaded" in out
    last = err.strip().splitlines()[-1]  # after the policy store's own structured event
    assert last.startswith("mash: error: the agent would share nothing") and "Traceback" not in err
