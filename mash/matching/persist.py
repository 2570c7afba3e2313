"""Saving the match index to disk, and knowing when it no longer fits its sources.

The file is a numpy ``.npz`` archive (no pickle) holding the index's arrays, its interned
strings and the fingerprint of the sources it was built from. A fingerprint mismatch, a
different index format or an unreadable file means: rebuild.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mash.matching.blocking import KEY_VERSION
from mash.matching.index import IDENTIFIER_WIDTHS, Interner, MatchIndex

if TYPE_CHECKING:
    from mash.agent.sources import SourceConfig

FORMAT = 1
_ARRAYS = ("name_start", "name_given", "name_other", "name_family", "dob", "sex", "postcode",
           "sector", "district", "key_hashes", "key_rows", "family_count", "given_count")


def _file_digest(path: Path) -> dict[str, Any]:
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest.hexdigest()}


def _sql_digest(cfg: SourceConfig) -> dict[str, Any]:
    """Row count, and the latest as-at value when the source names an as-at column: cheap on
    a large table. A change that keeps both (an edit in place without touching the as-at
    column) is not seen until the next restart without an index."""
    import sqlalchemy as sa

    engine = sa.create_engine(cfg.database_url)
    try:
        with engine.connect() as conn:
            if cfg.table:
                table = sa.Table(cfg.table, sa.MetaData(), autoload_with=conn)
                source: Any = table
            else:
                source = sa.text(cfg.query or "").columns().subquery("q")
            out: dict[str, Any] = {"rows": conn.execute(
                sa.select(sa.func.count()).select_from(source)).scalar_one()}
            if cfg.as_at_column:
                column = sa.column(cfg.as_at_column)
                out["latest"] = str(conn.execute(
                    sa.select(sa.func.max(column)).select_from(source)).scalar_one())
            return out
    finally:
        engine.dispose()


def fingerprint(sources: list[SourceConfig]) -> str:
    """What the index depends on: every source's content (files: size, mtime and SHA-256;
    SQL: row count and latest as-at), its column mapping, and the key and index formats."""
    doc: list[Any] = [{"format": FORMAT, "keys": KEY_VERSION}]
    for cfg in sources:
        entry: dict[str, Any] = {"name": cfg.name, "type": cfg.type,
                                 "mapping": sorted(cfg.mapping.columns.items())}
        if cfg.type == "csv" and cfg.path is not None:
            entry.update(_file_digest(cfg.path))
        elif cfg.type == "sqlite" and cfg.path is not None:
            entry.update(_file_digest(cfg.path))
            entry.update(table=cfg.table, query=cfg.query)
        else:
            entry.update(_sql_digest(cfg), table=cfg.table, query=cfg.query)
        doc.append(entry)
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def save(index: MatchIndex, path: Path, source_fingerprint: str) -> None:
    """Write atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "fingerprint": source_fingerprint, "records": len(index)}
    arrays = {name: getattr(index, name) for name in _ARRAYS}
    arrays.update({f"id_{kind}": column for kind, column in index.identifiers.items()})
    arrays["strings"] = np.frombuffer(json.dumps(index.strings.strings).encode(), np.uint8)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


def read_meta(path: Path) -> dict[str, Any] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(data["meta"].tobytes())
    except (OSError, ValueError, KeyError):
        return None


def load(path: Path, source_fingerprint: str) -> MatchIndex | None:
    """The saved index when it was built from these sources in this format, else None."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(data["meta"].tobytes())
            if meta.get("format") != FORMAT or meta.get("fingerprint") != source_fingerprint:
                return None
            strings = Interner(json.loads(data["strings"].tobytes()))
            arrays = {name: data[name] for name in _ARRAYS}
            identifiers = {kind: data[f"id_{kind}"] for kind in IDENTIFIER_WIDTHS}
    except (OSError, ValueError, KeyError):
        return None
    return MatchIndex(strings=strings, identifiers=identifiers, **arrays)
