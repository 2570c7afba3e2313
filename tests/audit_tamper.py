"""Tampering with an audit store behind the library's back, as an attacker with write access
and the writer's signing key would: cloning a store, truncating a chain, rewriting an entry
and recomputing every hash and checkpoint after it, deleting a whole writer."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

import psycopg

from mash.audit import merkle
from mash.audit.chain import make_row
from mash.audit.checkpoint import Signer, parse_payload
from mash.audit.store import open_store

TABLES = ("audit_heads", "audit_entries", "audit_index", "audit_checkpoints",
          "audit_notifications")


class Raw:
    """A raw connection to a store (SQLite file or PostgreSQL schema)."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            self.kind = "sqlite"
            self.conn: Any = sqlite3.connect(url[len("sqlite:///"):])
        else:
            self.kind = "postgres"
            base, _, schema = url.partition("?schema=")
            self.conn = psycopg.connect(base, autocommit=True)
            self.conn.execute(f'SET search_path TO "{schema}"')

    def q(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.kind == "postgres":
            sql = sql.replace("?", "%s")
        cur = self.conn.execute(sql, params)
        rows = list(cur.fetchall()) if cur.description else []
        if self.kind == "sqlite":
            self.conn.commit()
        return rows

    def columns(self, table: str) -> list[str]:
        cur = self.conn.execute(f"SELECT * FROM {table} LIMIT 0")
        return [d[0] for d in cur.description]

    def close(self) -> None:
        self.conn.close()


def clone(src_url: str, dst_url: str) -> None:
    """Copy every row of a store into a new, empty one."""
    open_store(dst_url).close()
    src, dst = Raw(src_url), Raw(dst_url)
    try:
        for table in TABLES:
            cols = src.columns(table)
            marks = ", ".join("?" for _ in cols)
            for row in src.q(f"SELECT {', '.join(cols)} FROM {table}"):
                dst.q(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", tuple(row))
    finally:
        src.close()
        dst.close()


def _set_head(raw: Raw, writer: str) -> None:
    """Make the head row agree with the chain as it now is (as an attacker would)."""
    rows = raw.q("SELECT seq, entry_hash FROM audit_entries WHERE writer_id = ? ORDER BY seq",
                 (writer,))
    frontier = merkle.frontier_of(merkle.leaf_hash(h) for _, h in rows)
    last_seq, last_hash = rows[-1] if rows else (0, "0" * 64)
    raw.q("UPDATE audit_heads SET seq = ?, entry_hash = ?, frontier = ? WHERE writer_id = ?",
          (last_seq, last_hash, json.dumps([n.hex() for n in frontier]), writer))


def truncate(url: str, writer: str, count: int) -> int:
    """Delete the last `count` entries, their checkpoints and index rows; fix the head."""
    raw = Raw(url)
    try:
        last = raw.q("SELECT max(seq) FROM audit_entries WHERE writer_id = ?", (writer,))[0][0]
        keep = int(last) - count
        for table in ("audit_entries", "audit_index", "audit_notifications",
                      "audit_checkpoints"):
            raw.q(f"DELETE FROM {table} WHERE writer_id = ? AND seq > ?", (writer, keep))
        _set_head(raw, writer)
        return keep
    finally:
        raw.close()


def rewrite(url: str, writer: str, seq: int, signing_key: Path) -> None:
    """Change one entry's justification, recompute the chain after it and re-sign every
    checkpoint from there on with the writer's own key."""
    signer = Signer.from_file(signing_key)
    raw = Raw(url)
    try:
        rows = raw.q("SELECT seq, recorded_at, prev_hash, agreements, body FROM audit_entries "
                     "WHERE writer_id = ? AND seq >= ? ORDER BY seq", (writer, seq))
        prev = rows[0][2]
        hashes = {}
        for n, at, _, agreements, body in rows:
            if n == seq:
                doc = json.loads(body)
                doc["justification"] = "routine check, nothing of note"
                body = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            row = make_row(writer, n, prev, at, tuple(json.loads(agreements)), body.encode())
            raw.q("UPDATE audit_entries SET prev_hash = ?, body_hash = ?, entry_hash = ?, "
                  "body = ? WHERE writer_id = ? AND seq = ?",
                  (row.prev_hash, row.body_hash, row.entry_hash, row.body, writer, n))
            prev = hashes[n] = row.entry_hash
        all_hashes = [h for (h,) in raw.q("SELECT entry_hash FROM audit_entries WHERE "
                                          "writer_id = ? ORDER BY seq", (writer,))]
        tree = merkle.Tree.of_entries(all_hashes)
        for cid, payload in raw.q("SELECT id, payload FROM audit_checkpoints WHERE "
                                  "writer_id = ? AND seq >= ?", (writer, seq)):
            old = parse_payload(payload)
            new = dataclasses.replace(old, entry_hash=hashes[old.seq], root=tree.root(old.seq))
            signed = signer.sign(new)
            raw.q("UPDATE audit_checkpoints SET payload = ?, signature = ? WHERE id = ?",
                  (signed.payload, signed.signature, cid))
        _set_head(raw, writer)
    finally:
        raw.close()


def delete_writer(url: str, writer: str) -> None:
    raw = Raw(url)
    try:
        for table in TABLES:
            raw.q(f"DELETE FROM {table} WHERE writer_id = ?", (writer,))
    finally:
        raw.close()


def delete_checkpoint(url: str, writer: str, seq: int) -> None:
    raw = Raw(url)
    try:
        raw.q("DELETE FROM audit_checkpoints WHERE writer_id = ? AND seq = ?", (writer, seq))
    finally:
        raw.close()
