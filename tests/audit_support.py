"""Shared by the audit tests: real SQLite files and an isolated schema on the real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mash.audit.checkpoint import Signer, Verifier
from mash.audit.entry import AuditEntry, Outcome, Released
from mash.audit.keys import KeyFiles, write_keys
from mash.audit.log import AuditLog
from mash.audit.store import AuditStore, open_store
from mash.audit.subject_hash import SubjectHasher
from mash.subject import Name, SubjectQuery

PG_HOST = "127.0.0.1:5432"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

JANE = SubjectQuery(names=(Name("jane", "", "smith"),), date_of_birth=dt.date(2012, 1, 2),
                    identifiers={"nhs_number": "9434765919"})


def pg_base_url() -> str:
    """A reachable PostgreSQL URL, or a test failure that says so (CI has PostgreSQL)."""
    explicit = os.environ.get("MASH_TEST_POSTGRES_URL")
    candidates = [explicit] if explicit else [
        f"postgresql://postgres@{PG_HOST}/test", f"postgresql://root@{PG_HOST}/test"]
    errors = []
    for url in candidates:
        try:
            with psycopg.connect(url, connect_timeout=5):
                return url
        except psycopg.Error as exc:
            errors.append(f"{url}: {str(exc).strip().splitlines()[0]}")
    pytest.fail("PostgreSQL is needed for the tests marked postgres and is unreachable "
                f"({'; '.join(errors)}); start it or set MASH_TEST_POSTGRES_URL", pytrace=False)


class Backend:
    """A store location plus a raw connection for tampering with it behind the library's back."""

    def __init__(self, kind: str, url: str, raw: Any) -> None:
        self.kind = kind
        self.url = url
        self._raw = raw

    def open(self) -> AuditStore:
        return open_store(self.url)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.kind == "postgres":
            sql = sql.replace("?", "%s")
        cur = self._raw.execute(sql, params)
        try:
            return list(cur.fetchall())
        except (psycopg.ProgrammingError, AttributeError):
            return []
        finally:
            if self.kind == "sqlite":
                self._raw.commit()


@contextmanager
def backend(kind: str, tmp_path: Path) -> Iterator[Backend]:
    if kind == "sqlite":
        import sqlite3

        path = tmp_path / "audit.db"
        url = f"sqlite:///{path}"
        open_store(url).close()  # create the schema
        raw = sqlite3.connect(path)
        try:
            yield Backend(kind, url, raw)
        finally:
            raw.close()
        return
    base = pg_base_url()
    schema = f"audit_test_{uuid.uuid4().hex[:12]}"
    url = f"{base}?schema={schema}"
    open_store(url).close()
    raw = psycopg.connect(base, autocommit=True)
    raw.execute(f'SET search_path TO "{schema}"')
    try:
        yield Backend(kind, url, raw)
    finally:
        raw.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        raw.close()


class Keys:
    def __init__(self, directory: Path) -> None:
        self.files: KeyFiles = write_keys(directory)
        self.signer = Signer.from_file(self.files.signing_key)
        self.hasher = SubjectHasher.from_file(self.files.hash_key)

    def verifier(self) -> Verifier:
        return Verifier([self.signer.public_key])


def entry(n: int = 0, hasher: SubjectHasher | None = None, subject: SubjectQuery = JANE,
          state: str = "NOT_KNOWN", agreement: str = "mou-police-csc", event: str = "query",
          refs: tuple[str, ...] = ()) -> AuditEntry:
    hashes = hasher.hashes(subject) if hasher else ()
    released = (Released("given_name", "keep"), Released("date_of_birth", "year")) \
        if state == "KNOWN" else ()
    return AuditEntry(
        event=event, lookup_id=f"lookup-{n}", query_id=f"query-{n}", requester="a.analyst",
        requester_agency="csc", role="analyst", team="mash-1", purpose="child_safeguarding",
        stage="triage", case_reference=f"CASE-{n % 3}",
        justification="school raised a concern about bruising", urgency="amber",
        subject=hashes, policy_revision="bundle-7", agreements=(agreement,),
        outcomes=(Outcome("police", state, agreement_id=agreement, policy_revision="bundle-7",
                          matches=1 if state in ("KNOWN", "WITHHELD") else 0,
                          released=released, record_refs=refs),))


def fill(log: AuditLog, count: int, hasher: SubjectHasher | None = None) -> None:
    for n in range(count):
        log.append(entry(n, hasher))


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)
