"""No personal data in any log line, from real processes, whatever the lookup."""

from __future__ import annotations

import asyncio
import json
import re

import grpc

from mash.v1 import subject_pb2
from tests.helpers import Running, build_federation, lookup_request, processes, spawn

# Distinctive values: if any of them reaches a log, the test names it.
GIVEN, FAMILY = "Zebedee", "Quixotically"
NHS = "9434765919"
DOB_ISO, DOB_UK = "2013-04-27", "27/04/2013"
POSTCODE = "LS6 3QZ"


def personal_values() -> list[str]:
    return [GIVEN, FAMILY, NHS, DOB_ISO, DOB_UK, POSTCODE, POSTCODE.replace(" ", ""),
              "Leah", "Thompson", "2014-05-17", "LS9 8AB", "Ruby", "Clarke", "HX1 2RS",
              "Present at domestic incident"]


async def test_logs_hold_no_personal_data(tmp_path) -> None:
    fed = build_federation(tmp_path / "fed", agencies=["police", "health", "education"],
                           broker_overrides={"log_level": "debug"},
                           agent_overrides={a: {"log_level": "debug"}
                                            for a in ("police", "health", "education")})
    run = Running(fed)
    analyst = run.analyst()
    with processes() as procs:
        procs.append(spawn(fed, "broker"))
        procs += [spawn(fed, "agent", a) for a in ("police", "health", "education")]
        for _ in range(300):
            try:
                status = (await analyst.agents()).agents
                if all(a.online and a.ready for a in status):
                    break
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
        # known, not known, withheld and refused lookups, with identifiers and bad input
        await analyst.lookup(lookup_request())
        await analyst.lookup(lookup_request("Ruby Clarke", "2017-02-03", ("HX1 2RS",)))
        unknown = lookup_request(f"{GIVEN} {FAMILY}", DOB_ISO, (POSTCODE,))
        unknown.subject.identifiers.add(kind=subject_pb2.IDENTIFIER_KIND_NHS_NUMBER, value=NHS)
        await analyst.lookup(unknown)
        impossible = lookup_request(f"{GIVEN} {FAMILY}", None)
        impossible.subject.date_of_birth.CopyFrom(subject_pb2.Date(year=2013, month=2, day=30))
        for bad in (impossible,
                    lookup_request(f"{GIVEN} {FAMILY}", DOB_ISO, ("ZZ9 X",)),
                    lookup_request(f"{GIVEN} {FAMILY}", DOB_ISO, purpose="nosy")):
            try:
                await analyst.lookup(bad)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
        for proc in procs:
            assert proc.stop() == 0
        logs = {proc.name: proc.text() for proc in procs}
    assert "lookup_answered" in logs["broker"]
    assert "query_answered" in logs["police"]
    for name, text in logs.items():
        for line in text.splitlines():
            event = json.loads(line)  # one JSON event per line, nothing else
            assert "event" in event and "timestamp" in event
        for value in personal_values():
            assert not re.search(re.escape(value), text, re.IGNORECASE), (
                f"{value!r} appears in the {name} log")
