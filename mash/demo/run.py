"""`mash demo`: real processes on loopback, real mTLS, real lookups, then a clean stop."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console
from rich.rule import Rule

from mash.answers import STATE_LABELS
from mash.cli.render import print_lookup
from mash.client import BrokerAgents, BrokerClient, ClientConfig
from mash.demo import data, federation
from mash.errors import MashError
from mash.requests import build_request
from mash.v1 import answer_pb2, lookup_pb2

RUNNING = ["police", "health", "csc", "education", "probation", "asc", "ambulance"]
OFFLINE = ["housing"]  # registered with the broker, but its agent is not started

console = Console()


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    fh = log.open("wb")
    return subprocess.Popen([sys.executable, "-m", "mash", *args], stdout=fh, stderr=fh,
                            start_new_session=True)


def _stop(procs: dict[str, subprocess.Popen[bytes]]) -> bool:
    """SIGTERM everything, wait; True when every process exited by itself."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    clean = True
    deadline = time.monotonic() + 10
    for name, proc in procs.items():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            console.print(f"[red]{name} did not stop in time; killing it[/red]")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            clean = False
    return clean


# Every agent calibrates its index when it starts (some 10 to 15 s of CPU time each for the
# demo's few hundred records), all seven at once: on a 2-CPU machine that is busy with
# something else too they were seen to need 55 s, so a minute was too tight.
ONLINE_TIMEOUT = 180.0


def _wait_online(client: BrokerClient, agencies: list[str],
                 procs: dict[str, subprocess.Popen[bytes]],
                 timeout: float = ONLINE_TIMEOUT) -> None:
    """Until every agent is online and ready at every broker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited early (code {proc.returncode}); see its log")
        views = client.list_agents_by_broker(timeout=2).values()
        if all(_all_ready(view, agencies) for view in views):
            return
        time.sleep(0.3)
    raise RuntimeError(f"agents did not come online within {timeout:.0f} s; see the logs")


def _all_ready(view: BrokerAgents, agencies: list[str]) -> bool:
    if isinstance(view, grpc.RpcError):
        return False
    status = {a.agency_id: a for a in view.agents}
    return all(a in status and status[a].online and status[a].ready for a in agencies)


FAILOVER_LOOKUP = ("8. Several brokers: one is killed (kill -9), and the next lookup is "
                   "answered by another", dict(
                       name="Leah Thompson", dob="2014-05-17", postcode=["LS9 8AB"],
                       purpose="child_safeguarding", stage="research", case="MASH-2026-0107",
                       reason="Follow-up research after strategy discussion", urgency="red"))


def _failover(fed: federation.Federation, procs: dict[str, subprocess.Popen[bytes]]) -> bool:
    """Kill one broker and show the next lookup answered by another; True when it was."""
    title, spec = FAILOVER_LOOKUP
    console.print(Rule(title))
    victim = f"broker-{len(fed.broker_ports)}"
    with BrokerClient(ClientConfig.load(fed.client_config)) as client:
        before = client.lookup(_request(spec), timeout=15)
        console.print(f"Lookup {before.lookup_id} answered with {len(fed.broker_ports)} "
                      "brokers up.")
        os.killpg(procs[victim].pid, signal.SIGKILL)
        procs[victim].wait()
        console.print(f"Killed {victim} (127.0.0.1:{fed.broker_ports[-1]}) with SIGKILL.")
        response = client.lookup(_request(spec), timeout=15)
        print_lookup(response, console)
        views = client.list_agents_by_broker(timeout=2)
    up = [a for a, v in views.items() if not isinstance(v, grpc.RpcError)]
    how = (f"after {client.retried} retry(ies) under the same lookup id" if client.retried
           else "the killed broker had already left the client's round robin")
    console.print(f"Answered by the broker still up ({', '.join(up)}): {how}.")
    return any(a.state == answer_pb2.ANSWER_STATE_KNOWN for a in response.answers)


LOOKUPS: list[tuple[str, dict[str, Any]]] = [
    ("1. A child known to several agencies (research stage)", dict(
        name="Leah Thompson", dob="2014-05-17", postcode=["LS9 8AB"],
        purpose="child_safeguarding", stage="research", case="MASH-2026-0101",
        reason="Referral from school: disclosure of domestic abuse at home", urgency="red")),
    ("2. The same child asked about at triage: less is released", dict(
        name="Leah Thompson", dob="2014-05-17", postcode=["LS9 8AB"],
        purpose="child_safeguarding", stage="triage", case="MASH-2026-0101",
        reason="Initial triage of school referral", urgency="red")),
    ("3. A restricted health record: WITHHELD", dict(
        name="Ruby Clarke", dob="2017-02-03", postcode=["WF1 3LP"],
        purpose="child_safeguarding", stage="research", case="MASH-2026-0102",
        reason="Health visitor concern about neglect", urgency="amber")),
    ("4. A child nobody knows: NOT_KNOWN, with what was searched", dict(
        name="Oliver Grant", dob="2012-09-30", postcode=["HX1 2RS"],
        purpose="child_safeguarding", stage="research", case="MASH-2026-0103",
        reason="Anonymous concern from a neighbour", urgency="green")),
    ("5. A name alone is not enough: NOT_CHECKED (too few identifiers)", dict(
        name="Tyler Mason", purpose="child_safeguarding", stage="research",
        case="MASH-2026-0104", reason="Youth worker concern about exploitation",
        urgency="amber")),
    ("6. An adult at risk: other agreements, other agencies", dict(
        name="Darren Thompson", dob="1986-07-21", postcode=["LS9 8AB"],
        purpose="adult_safeguarding", stage="research", case="MASH-2026-0105",
        reason="Linked adult in domestic abuse referral MASH-2026-0101", urgency="red")),
]

BLIND_LOOKUP = ("7. Blind: the broker routes the lookup but reads neither the subject nor the "
                "answers; agencies without a candidate never see who was asked about", dict(
                    name="Leah Thompson", dob="2014-05-17", postcode=["LS9 8AB"],
                    purpose="child_safeguarding", stage="research", case="MASH-2026-0106",
                    reason="Strategy discussion preparation", urgency="red"))


def _request(spec: Mapping[str, Any]) -> lookup_pb2.LookupRequest:
    defaults: dict[str, Any] = dict(
        name=None, given=None, family=None, aliases=[], dob=None, sex=None, postcodes=[],
        nhs=None, upn=None, pnc=None, ni=None, local=[], agencies=[])
    args = {**defaults, **spec}
    args["postcodes"] = args.pop("postcode", [])
    return build_request(**args)


def run_demo(directory: Path, keep: bool = False, brokers: int = 1) -> int:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    logs = directory / "logs"
    logs.mkdir()
    console.print(Rule("MASH Exchange demo"))
    console.print("Writing synthetic agency records (fictional people only)...")
    files = data.write_all(directory / "data")
    console.print("Creating a development CA, certificates, an issuer key and configs...")
    fed = federation.build(directory, RUNNING + OFFLINE, files, relative_paths=True,
                           brokers=brokers)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    seen_states: set[str] = set()
    ok = False
    try:
        for n, config in enumerate(fed.broker_configs, 1):
            name = "broker" if n == 1 else f"broker-{n}"
            procs[name] = _spawn(["broker", "serve", "--config", str(config)],
                                 logs / f"{name}.log")
        for agency in RUNNING:
            procs[agency] = _spawn(["agent", "serve", "--config",
                                    str(fed.agent_configs[agency])], logs / f"{agency}.log")
        where = ", ".join(f"127.0.0.1:{p}" for p in fed.broker_ports)
        console.print(f"Started {'a broker' if brokers == 1 else f'{brokers} brokers'} on "
                      f"{where} and agents for {', '.join(RUNNING)}; {', '.join(OFFLINE)} is "
                      "registered but offline.")
        with BrokerClient(ClientConfig.load(fed.client_config)) as client:
            _wait_online(client, RUNNING, procs)
            console.print("All running agents are online.\n")
            for title, spec in LOOKUPS:
                console.print(Rule(title))
                response = client.lookup(_request(spec), timeout=15)
                print_lookup(response, console)
                seen_states |= {STATE_LABELS[a.state] for a in response.answers}
        assert fed.blind_client_config is not None  # federation.build writes it
        with BrokerClient(ClientConfig.load(fed.blind_client_config)) as client:
            title, spec = BLIND_LOOKUP
            console.print(Rule(title))
            result = client.blind_lookup(_request(spec), timeout=15)
            print_lookup(result.response, console)
            signers = sorted({s.agency_id for s in result.evidence})
            console.print(f"Answers signed by {', '.join(signers)} were verified against the "
                          "federation key directory; the broker relayed sealed bytes only.")
            blind_ok = any(a.state == answer_pb2.ANSWER_STATE_KNOWN
                           for a in result.response.answers)
        failover_ok = _failover(fed, procs) if brokers > 1 else True
        ok = seen_states == set(STATE_LABELS.values()) and blind_ok and failover_ok
        console.print(Rule())
        console.print(f"Answer states shown: {', '.join(sorted(seen_states))}")
    except (RuntimeError, MashError, grpc.RpcError) as exc:
        detail = exc.details() if isinstance(exc, grpc.RpcError) else str(exc)
        console.print(f"[red]demo failed: {detail}[/red] (logs in {logs})")
        keep = True
    finally:
        clean = _stop(procs)
        console.print("Stopped the broker and agents cleanly." if clean
                      else "[red]Some processes had to be killed.[/red]")
    if keep:
        console.print(f"Files kept in {directory}")
    else:
        shutil.rmtree(directory, ignore_errors=True)
    return 0 if ok and clean else 1
