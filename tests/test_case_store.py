"""Cases kept by the console: encrypted at rest, kept for the retention period and then
deleted, reopening audited before anything is shown (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from mash.audit.errors import AuditError
from mash.audit.log import AuditLog
from mash.audit.report import Criteria, search
from mash.audit.store import open_store
from mash.audit.verify import verify_store
from mash.cases.store import CaseStore, CaseStoreError, read_case_key, write_case_key
from mash.identity.tokens import Analyst
from tests.audit_support import Keys, pg_base_url, utc

SAM = Analyst("sam.analyst", "mash", "analyst", "mash-1", "idp", "t", utc(2030, 1, 1))
JO = Analyst("jo.analyst", "mash", "analyst", "mash-1", "idp", "t", utc(2030, 1, 1))
HEADER = {"reference": "MASH-2026-0107", "purpose": "child_safeguarding", "stage": "research",
          "urgency": "red", "people": 2}
PICTURE = {"people": [{"label": "Leah Thompson", "relationship": "child",
                       "cells": {"police": {"state": "KNOWN"}}}]}
NOW = utc(2026, 12, 1, 9)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cases.db'}"
        return
    base = pg_base_url()
    schema = f"cases_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    yield ("postgresql+psycopg://" + base.removeprefix("postgresql://") +
           f"{sep}options=-csearch_path%3D{schema}")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path / "audit-keys")


def store_at(url: str, tmp_path: Path, keys: Keys, key_name: str = "case.key") -> CaseStore:
    key_file = tmp_path / key_name
    if not key_file.exists():
        write_case_key(key_file)
    audit = AuditLog(open_store(f"sqlite:///{tmp_path / 'console-audit.db'}"), "console",
                     keys.signer)
    return CaseStore(url, key=read_case_key(key_file), retention=dt.timedelta(days=30),
                     audit=audit)


def raw_rows(store: CaseStore) -> list[bytes]:
    with store.engine.connect() as conn:
        return [b"".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
                         for v in row) for row in conn.execute(sa.text(
                             "SELECT * FROM console_cases")).all()]


def test_stored_encrypted_and_reopened_with_an_audit_entry(url: str, tmp_path: Path,
                                                           keys: Keys) -> None:
    with store_at(url, tmp_path, keys) as store:
        stored = store.save(owner=SAM.subject, header=HEADER, picture=PICTURE, now=NOW)
        assert stored.expires_at == NOW + dt.timedelta(days=30)
        raw = b"".join(raw_rows(store))
        for secret in (b"Leah", b"Thompson", b"MASH-2026-0107", b"KNOWN"):
            assert secret not in raw  # encrypted at rest
        assert stored.case_id.encode() in raw and b"sam.analyst" in raw  # control: it is there
        listed = store.cases_of(SAM.subject, now=NOW)
        assert [(c.case_id, c.header["reference"]) for c in listed] == [
            (stored.case_id, "MASH-2026-0107")]
        again, picture = store.reopen(stored.case_id, analyst=SAM, now=NOW)
        assert picture == PICTURE and again.header == HEADER
    audit = open_store(f"sqlite:///{tmp_path / 'console-audit.db'}")
    found = search(audit, Criteria(case_reference="MASH-2026-0107"))
    assert [(f.entry.event, f.entry.requester) for f in found if f.entry] == [
        ("reopen", "sam.analyst")]
    assert stored.case_id in found[0].entry.detail  # type: ignore[union-attr]
    assert all(r.ok for r in verify_store(audit, keys.verifier()))
    audit.close()


def test_only_the_owner_reopens_it(url: str, tmp_path: Path, keys: Keys) -> None:
    with store_at(url, tmp_path, keys) as store:
        stored = store.save(owner=SAM.subject, header=HEADER, picture=PICTURE, now=NOW)
        assert store.cases_of(JO.subject, now=NOW) == []
        with pytest.raises(CaseStoreError, match="not yours"):
            store.reopen(stored.case_id, analyst=JO, now=NOW)
        assert store.reopen(stored.case_id, analyst=SAM, now=NOW)[1] == PICTURE  # control


def test_deleted_after_the_retention(url: str, tmp_path: Path, keys: Keys) -> None:
    with store_at(url, tmp_path, keys) as store:
        stored = store.save(owner=SAM.subject, header=HEADER, picture=PICTURE, now=NOW)
        late = NOW + dt.timedelta(days=30, seconds=1)
        with pytest.raises(CaseStoreError, match="expired"):  # even before the purge ran
            store.reopen(stored.case_id, analyst=SAM, now=late)
        assert store.purge(NOW + dt.timedelta(days=29)) == 0  # control: kept until then
        assert store.purge(late) == 1
        assert raw_rows(store) == []


def test_an_altered_row_or_another_key_does_not_open(url: str, tmp_path: Path,
                                                     keys: Keys) -> None:
    with store_at(url, tmp_path, keys) as store:
        stored = store.save(owner=SAM.subject, header=HEADER, picture=PICTURE, now=NOW)
        other = store.save(owner=JO.subject, header=HEADER, picture=PICTURE, now=NOW)
        with store.engine.begin() as conn:  # move Jo's case to Sam behind the store's back
            conn.execute(sa.text("UPDATE console_cases SET owner = 'sam.analyst' "
                                 "WHERE case_id = :c"), {"c": other.case_id})
        with pytest.raises(CaseStoreError, match="altered, or moved to another owner"):
            store.reopen(other.case_id, analyst=SAM, now=NOW)
    with store_at(url, tmp_path, keys, key_name="other.key") as store, \
            pytest.raises(CaseStoreError, match="another key"):
        store.reopen(stored.case_id, analyst=SAM, now=NOW)


def test_not_shown_when_the_reopening_cannot_be_audited(url: str, tmp_path: Path,
                                                        keys: Keys) -> None:
    with store_at(url, tmp_path, keys) as store:
        stored = store.save(owner=SAM.subject, header=HEADER, picture=PICTURE, now=NOW)
        store.audit.close()
        with pytest.raises(AuditError):
            store.reopen(stored.case_id, analyst=SAM, now=NOW)


def test_a_bad_key_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not hex")
    with pytest.raises(Exception, match="not a case store key"):
        read_case_key(bad)
    bad.write_text("ab" * 16)
    with pytest.raises(Exception, match="32 bytes"):
        read_case_key(bad)
