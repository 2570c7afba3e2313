"""Subject access by the records matched: a lookup that found an agency's record is listed by
that agency's "who looked up this person?" however the analyst typed the subject (a nickname,
a postcode without a date of birth, an alias in a lookup about someone else), and the broker's
report includes it from the agency's list; a lookup that matched someone else is not. Real
broker and agents, real audit stores."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mash.cli import app
from mash.demo import data
from mash.v1 import answer_pb2, lookup_pb2
from tests.helpers import Running, build_federation, lookup_request, split_name

R = answer_pb2
runner = CliRunner()
TYLER = data.cast()["tyler"]


def _aliases(request: lookup_pb2.LookupRequest, *names: str) -> lookup_pb2.LookupRequest:
    for name in names:
        request.subject.aliases.add().CopyFrom(split_name(name))
    return request


def mash(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result
    return result.exit_code, result.stdout, result.stderr


def _cases(report: dict) -> set[str]:
    return {e["case_reference"] for e in report["entries"] if e.get("case_reference")}


async def test_an_agencys_search_finds_every_lookup_that_matched_its_record(tmp_path: Path):
    # the saved index (and its calibration) spares the search at the agency a rebuild
    fed = build_federation(tmp_path / "fed", ["police"], agent_overrides={
        "police": {"index": {"path": str(tmp_path / "police-index.npz")}}})
    run = Running(fed)
    await run.start_broker()
    await run.start_agent("police")
    try:
        analyst = run.analyst()
        asked = {
            # the nickname the police record holds as an alias, with the date of birth
            "MASH-SAR-NICK": lookup_request("Ty Mason", "2009-11-02", (), case="MASH-SAR-NICK"),
            # name and postcode, no date of birth
            "MASH-SAR-PC": lookup_request("Tyler Mason", None, ("BD5 7HJ",),
                                          case="MASH-SAR-PC"),
            # about somebody else, with aliases naming Tyler among others: Tyler's record is
            # matched and left out of the answer, yet his search must find the lookup
            "MASH-SAR-ALIAS": _aliases(lookup_request(postcodes=("LS9 8AB", "BD5 7HJ"),
                                                      case="MASH-SAR-ALIAS"),
                                       "Darren Thompson", "Tyler Mason"),
            # somebody else the police hold: must not be listed
            "MASH-SAR-OTHER": lookup_request("Darren Thompson", "1986-07-21", ("LS9 8AB",),
                                             case="MASH-SAR-OTHER"),
        }
        for case, request in asked.items():
            answers = {a.agency_id: a for a in (await analyst.lookup(request)).answers}
            assert answers["police"].state == R.ANSWER_STATE_KNOWN, case
    finally:
        await run.stop()
    police, broker = str(fed.agent_configs["police"]), str(fed.broker_config)

    # the attack: searching by how the subject is written today finds neither lookup
    code, out, _ = mash("audit", "search", "--config", police, "--name", "Tyler Mason",
                        "--dob", "2009-11-02")
    assert code == 0 and "MASH-SAR-NICK" not in out and "MASH-SAR-PC" not in out

    # by name and date of birth, as the agency holds the person: both, and not the other
    sar = tmp_path / "police-sar.json"
    code, _, err = mash("audit", "export", "--config", police, "--format", "json", "--out",
                        str(sar), "--held", "--name", "Tyler Mason", "--dob", "2009-11-02")
    assert code == 0, err
    assert "held: 1 record of this agency: niche_rms:" in err
    report = json.loads(sar.read_text())
    assert _cases(report) == {"MASH-SAR-NICK", "MASH-SAR-PC", "MASH-SAR-ALIAS"}
    assert all("matched record" in e["matched_on"] for e in report["entries"])
    assert len(report["lookup_ids"]) == 3

    # by PNC ID: the same two
    code, out, _ = mash("audit", "search", "--config", police, "--held", "--pnc",
                        TYLER.pnc_id)
    assert code == 0 and "MASH-SAR-NICK" in out and "MASH-SAR-PC" in out
    assert "MASH-SAR-ALIAS" in out and "MASH-SAR-OTHER" not in out

    # the broker's report takes the agency's list: its own entries of those two lookups
    code, out, err = mash("audit", "export", "--config", broker, "--format", "json", "--out",
                          "-", "--lookups-from", str(sar))
    assert code == 0, err
    at_broker = json.loads(out)
    assert _cases(at_broker) == {"MASH-SAR-NICK", "MASH-SAR-PC", "MASH-SAR-ALIAS"}
    assert {e["event"] for e in at_broker["entries"]} == {"lookup", "answers"}
    # positive control: without the agency's list the broker finds them by the typed name only
    code, out, _ = mash("audit", "search", "--config", broker, "--name", "Tyler Mason",
                        "--dob", "2009-11-02")
    assert "MASH-SAR-NICK" not in out

    # bad input: one readable line, a usage exit code
    bad = tmp_path / "bad.json"
    bad.write_text('{"lookup_ids": ["x; DROP TABLE"]}')
    code, _, err = mash("audit", "export", "--config", broker, "--out", "-",
                        "--lookups-from", str(bad))
    assert code == 2 and err.startswith("mash: error: ") and "not a lookup id" in err
    code, _, err = mash("audit", "search", "--config", police, "--held")
    assert code == 2 and "--held needs the person" in err
