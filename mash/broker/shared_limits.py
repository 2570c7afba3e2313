"""Per-analyst rate limits shared by every broker of a MASH, in PostgreSQL.

The same token bucket as `RateLimiter` (burst, refilled at per_minute), one row per analyst,
taken under the row's lock in one transaction, on the database's clock: an analyst whose
lookups are spread over several brokers still gets `per_minute` in all. The analyst is stored
as a SHA-256 of issuer and subject. When the database cannot be reached the limiter fails
closed: no lookup is admitted (`RateLimitUnavailable`).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import psycopg
from psycopg import sql

from mash.audit.errors import AuditError
from mash.audit.postgres_store import parse_url
from mash.dberrors import describe
from mash.errors import ConfigError, MashError

TABLE = "mash_rate_buckets"


class RateLimitUnavailable(MashError):
    """The shared rate limits cannot be read or written."""


class SharedRateLimiter:
    def __init__(self, url: str, per_minute: float, burst: int,
                 connect_timeout: int = 5) -> None:
        try:
            self._conninfo, self.schema, self.description = parse_url(url)
        except AuditError as exc:
            raise ConfigError(f"rate_limit.store: {exc}") from None
        self.per_minute = per_minute
        self.burst = burst
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext('mash_rate_buckets'))")
                    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                        sql.Identifier(self.schema)))
                    conn.execute(sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (who TEXT PRIMARY KEY, tokens DOUBLE "
                        "PRECISION NOT NULL, updated TIMESTAMPTZ NOT NULL)").format(
                            sql.Identifier(TABLE)))
            except psycopg.Error as exc:
                raise RateLimitUnavailable(f"{self.description}: {describe(exc)}") from None

    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if conn is not None:
            conn.close()
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True,
                                   connect_timeout=self._connect_timeout,
                                   application_name="mash-rate-limits")
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        except psycopg.Error as exc:
            raise RateLimitUnavailable(
                f"{self.description}: cannot connect: {describe(exc)}") from None
        self._conn = conn
        return conn

    def take(self, who: str) -> float:
        """0 when a lookup may go ahead; otherwise the seconds until one may. Blocking."""
        key = hashlib.sha256(who.encode()).hexdigest()
        rate = self.per_minute / 60.0
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    row = conn.execute(sql.SQL(
                        "INSERT INTO {t} AS b (who, tokens, updated) "
                        "VALUES (%s, %s, clock_timestamp()) ON CONFLICT (who) DO UPDATE SET "
                        "tokens = LEAST(%s, b.tokens + EXTRACT(EPOCH FROM clock_timestamp() "
                        "- b.updated) * %s), updated = clock_timestamp() RETURNING tokens"
                    ).format(t=sql.Identifier(TABLE)), (key, self.burst, self.burst, rate)
                    ).fetchone()
                    assert row is not None
                    tokens = float(row[0])
                    if tokens < 1:
                        return (1 - tokens) / rate
                    conn.execute(sql.SQL("UPDATE {} SET tokens = tokens - 1 WHERE who = %s"
                                         ).format(sql.Identifier(TABLE)), (key,))
                    return 0.0
            except psycopg.Error as exc:
                raise RateLimitUnavailable(f"{self.description}: {describe(exc)}") from None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
