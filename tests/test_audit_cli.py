"""`mash audit` end to end, through the main `mash` command, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import stat

import pytest
from typer.testing import CliRunner

from mash.audit.config import AuditConfig, AuditKeys
from mash.audit.log import AuditLog
from mash.cli import app
from tests.audit_support import BACKENDS, JANE, backend, entry, utc

runner = CliRunner()
OTHER_NHS = "4010232137"


def mash(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(params=BACKENDS)
def site(request, tmp_path):
    """Keys from `mash audit keygen`, a config file and a store with a few entries."""
    with backend(request.param, tmp_path) as db:
        result = mash("audit", "keygen", "--dir", str(tmp_path / "keys"))
        assert result.exit_code == 0, result.output
        config = tmp_path / "agent.yaml"
        config.write_text(
            "agency: police\n"
            "audit:\n"
            f"  store: {db.url}\n"
            "  writer_id: police-agent\n"
            "  hash_key_file: keys/audit-hash.key\n"
            "  signing_key_file: keys/audit-signing.key\n"
            "  checkpoint_every: 4\n"
            "  retention:\n"
            "    default_days: 3650\n"
            "    agreements: {mou-police-csc: 30}\n")
        cfg = AuditKeys.read(AuditConfig.load(config))
        ref = cfg.hasher.record_ref("pnd", "R-1")
        clock = [utc(2020, 1, 1)]
        with AuditLog(cfg.open_store(), cfg.config.writer_id, cfg.signer, 4,
                      clock=lambda: clock[0]) as log:
            log.append(entry(0, cfg.hasher, state="KNOWN", refs=(ref,)))      # old, 30 days
            log.append(entry(1, cfg.hasher, agreement="mou-other"))            # old, ten years
            clock[0] = utc(2030, 1, 1)
            log.append(entry(2, cfg.hasher, state="WITHHELD", refs=(ref,)))
            log.append(entry(3, cfg.hasher))
        db.config = str(config)
        db.tmp = tmp_path
        yield db


def test_keygen_writes_private_keys_0600_and_will_not_overwrite(tmp_path):
    assert mash("audit", "keygen", "--dir", str(tmp_path)).exit_code == 0
    for name in ("audit-hash.key", "audit-signing.key"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
    again = mash("audit", "keygen", "--dir", str(tmp_path))
    assert again.exit_code == 1
    assert again.output.count("\n") == 1 and "already exists" in again.output


def test_verify_ok_then_broken(site):
    ok = mash("audit", "verify", "--config", site.config)
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("OK police-agent: 4 entries")
    site.execute("UPDATE audit_entries SET body = replace(body, 'bruising', 'nothing') "
                 "WHERE seq = 3")
    broken = mash("audit", "verify", "--config", site.config)
    assert broken.exit_code == 1
    assert "mash: error: the audit trail is broken: police-agent seq 3: edited" in broken.output


def test_verify_without_secrets(site):
    result = mash("audit", "verify", "--store", site.url, "--public-key",
                  str(site.tmp / "keys" / "audit-signing.pub"))
    assert result.exit_code == 0, result.output
    no_key = mash("audit", "verify", "--store", site.url)
    assert no_key.exit_code != 0 and "--public-key" in no_key.output


def test_search_by_identifier_or_name_and_date_of_birth(site):
    by_nhs = mash("audit", "search", "--config", site.config, "--nhs", "943 476 5919")
    assert by_nhs.exit_code == 0, by_nhs.output
    assert "4 entries found" in by_nhs.output
    assert "a.analyst (analyst, csc, team mash-1)" in by_nhs.output
    assert "school raised a concern about bruising" in by_nhs.output
    assert "matched: nhs_number" in by_nhs.output
    by_name = mash("audit", "search", "--config", site.config, "--name", "Jane Smith",
                   "--dob", "2012-01-02", "--since", "2029-12-31")
    assert "2 entries found" in by_name.output and "name+date_of_birth" in by_name.output
    nobody = mash("audit", "search", "--config", site.config, "--nhs", OTHER_NHS)
    assert "0 entries found" in nobody.output
    case = mash("audit", "search", "--config", site.config, "--case-reference", "CASE-1")
    assert "1 entry found" in case.output
    bad = mash("audit", "search", "--config", site.config, "--nhs", "123")
    assert bad.exit_code != 0 and "NHS number '123' is not valid" in bad.output
    # errors name the option as typed here (the console's audit page says "date of birth")
    bad = mash("audit", "search", "--config", site.config, "--name", "Jane Smith",
               "--dob", "02/01/2012")
    assert bad.exit_code != 0 and "--dob '02/01/2012' is not a date like 2012-01-02" in bad.output
    bad = mash("audit", "search", "--config", site.config, "--local", "R-1")
    assert bad.exit_code != 0 and "--local 'R-1': write ISSUER:IDENTIFIER" in bad.output


def test_export_csv_and_json_without_identifiers(site):
    out = site.tmp / "sar.csv"
    result = mash("audit", "export", "--config", site.config, "--nhs", "9434765919",
                  "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert [r["seq"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0]["fields_released"] == "given_name:keep date_of_birth:year"
    assert rows[0]["agreement_id"] == "mou-police-csc" and rows[0]["matched_on"] == "nhs_number"
    as_json = mash("audit", "export", "--config", site.config, "--format", "json", "--out", "-")
    doc = json.loads(as_json.stdout)
    assert len(doc["entries"]) == 4
    text = as_json.stdout + out.read_text()
    for secret in ("9434765919", "jane", "smith", "2012-01-02", *jane_hashes(site)):
        assert secret not in text.lower()


def jane_hashes(site):
    return AuditKeys.read(AuditConfig.load(site.config)).hasher.hashes(JANE)


def test_owner_notifications(site):
    new = mash("audit", "notifications", "--config", site.config, "--unseen")
    assert "2 notifications" in new.output and "police=KNOWN" in new.output
    assert "police=WITHHELD" in new.output and "NEW" in new.output
    mine = mash("audit", "notifications", "--config", site.config, "--record", "pnd:R-1",
                "--mark-seen")
    assert "2 notifications marked seen" in mine.output
    assert "0 notifications" in mash("audit", "notifications", "--config", site.config,
                                     "--unseen").output
    other = mash("audit", "notifications", "--config", site.config, "--record", "pnd:R-2")
    assert "0 notifications" in other.output


def test_purge_then_verify(site):
    dry = mash("audit", "purge", "--config", site.config, "--dry-run")
    assert "police-agent: 1 entries would be purged" in dry.output
    result = mash("audit", "purge", "--config", site.config, "--by", "ig.lead")
    assert result.exit_code == 0, result.output
    assert "police-agent: 1 entries purged, 1 removed; chain now starts after seq 1" \
        in result.output
    verify = mash("audit", "verify", "--config", site.config)
    assert verify.exit_code == 0, verify.output
    assert "purged up to seq 1" in verify.output
    search = mash("audit", "search", "--config", site.config, "--requester", "ig.lead")
    assert "1 entry found" in search.output and "purge" in search.output


def test_purge_refuses_a_broken_trail(site):
    site.execute("DELETE FROM audit_entries WHERE seq = 2")
    result = mash("audit", "purge", "--config", site.config)
    assert result.exit_code == 1 and "not purging" in result.output


def test_checkpoint_witness_catches_truncation(site):
    witness = site.tmp / "witness.jsonl"
    result = mash("audit", "checkpoint", "--config", site.config, "--out", str(witness))
    assert result.exit_code == 0 and "police-agent: seq 4" in result.output
    site.execute("DELETE FROM audit_entries WHERE seq > 2")
    site.execute("DELETE FROM audit_checkpoints WHERE seq > 2")
    site.execute("UPDATE audit_heads SET seq = 2, entry_hash = (SELECT entry_hash FROM "
                 "audit_entries WHERE seq = 2)")
    verify = mash("audit", "verify", "--config", site.config, "--witness", str(witness))
    assert verify.exit_code == 1 and "truncated" in verify.output


def test_config_errors_are_one_line(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("audit:\n  store: sqlite:///a.db\n  writer: x\n")
    result = mash("audit", "verify", "--config", str(config))
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "audit" in result.output
    missing = mash("audit", "search", "--nhs", "9434765919")
    assert missing.exit_code == 2 and "no audit config" in missing.output


def test_no_personal_data_in_the_sqlite_file(tmp_path):
    with backend("sqlite", tmp_path) as db:
        from tests.audit_support import Keys

        keys = Keys(tmp_path / "keys")
        with AuditLog(db.open(), "broker-1", keys.signer) as log:
            for n in range(5):
                log.append(entry(n, keys.hasher, state="KNOWN"))
        path = tmp_path / "audit.db"
        sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
        data = b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*")).lower()
        for secret in (b"9434765919", b"jane", b"smith", b"2012-01-02"):
            assert secret not in data
        assert keys.hasher.hashes(JANE)[0].encode() in data


@pytest.mark.parametrize("args", [["--help"], ["search", "--help"]])
def test_help(args):
    assert mash("audit", *args).exit_code == 0
