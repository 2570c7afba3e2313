"""Saving the match index to disk, and knowing when it no longer fits its sources.

The file is a numpy ``.npz`` archive (no pickle) holding the index's arrays, its interned
strings, its match model (the calibration, as JSON) and the fingerprint of the content it was
built from (`index_fingerprint`: the bytes
or rows actually read, the mapping, the key and index formats). A fingerprint mismatch, a
different index format, an unreadable, truncated or inconsistent file means: rebuild (and
calibrate again).

`fingerprint` is cheaper and coarser (file size, mtime and hash; SQL row count and latest
as-at): it tells a running agent when to read its sources again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mash.files import atomic_writer
from mash.logs import get_logger
from mash.matching.blocking import KEY_VERSION
from mash.matching.index import ARRAYS, IDENTIFIER_WIDTHS, Interner, MatchIndex
from mash.matching.model import MatchModel

if TYPE_CHECKING:
    from mash.agent.sources import SourceConfig

log = get_logger(__name__)
FORMAT = 2  # 2: addresses, term-frequency counts and the match model


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
                column: sa.ColumnClause[Any] = sa.column(cfg.as_at_column)
                out["latest"] = str(conn.execute(
                    sa.select(sa.func.max(column)).select_from(source)).scalar_one())
            return out
    finally:
        engine.dispose()


def source_digest(cfg: SourceConfig) -> dict[str, Any]:
    """One source's part of `fingerprint`: a file's size, mtime and SHA-256 (an SQLite
    file's write-ahead log too, where changes sit until a checkpoint); SQL: row count and
    latest as-at."""
    if cfg.type == "csv" and cfg.path is not None:
        return _file_digest(cfg.path)
    if cfg.type == "sqlite" and cfg.path is not None:
        entry = _file_digest(cfg.path)
        wal = cfg.path.with_name(cfg.path.name + "-wal")
        if wal.exists():
            entry["wal"] = _file_digest(wal)
        return entry | {"table": cfg.table, "query": cfg.query}
    return _sql_digest(cfg) | {"table": cfg.table, "query": cfg.query}


def fingerprint(sources: list[SourceConfig],
                digests: dict[str, dict[str, Any]] | None = None) -> str:
    """What tells a running agent its sources changed: every source's digest (see
    `source_digest`; taken from `digests` by source name when given, e.g. a file's as it
    was read), its column mapping, and the key and index formats."""
    doc: list[Any] = [{"format": FORMAT, "keys": KEY_VERSION}]
    for cfg in sources:
        entry: dict[str, Any] = {"name": cfg.name, "type": cfg.type,
                                 "mapping": sorted(cfg.mapping.columns.items())}
        known = (digests or {}).get(cfg.name)
        entry.update(known if known is not None else source_digest(cfg))
        doc.append(entry)
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def index_fingerprint(sources: list[SourceConfig], contents: list[str]) -> str:
    """What a saved index was built from: each source's content as read (SHA-256 of a file's
    bytes or a query's rows), its column mapping, and the key and index formats. Exact where
    `fingerprint` is coarse: an SQL row edited in place without touching the as-at column
    changes this, not that."""
    doc: list[Any] = [{"format": FORMAT, "keys": KEY_VERSION}]
    for cfg, content in zip(sources, contents, strict=True):
        doc.append({"name": cfg.name, "type": cfg.type, "table": cfg.table,
                    "query": cfg.query, "mapping": sorted(cfg.mapping.columns.items()),
                    "content": content})
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def save(index: MatchIndex, path: Path, source_fingerprint: str,
         model: MatchModel | None = None) -> None:
    """Write atomically (mash.files: a temporary file flushed and renamed into place)."""
    meta = {"format": FORMAT, "fingerprint": source_fingerprint, "records": len(index)}
    arrays = index.arrays()
    arrays.update({f"id_{kind}": column for kind, column in index.identifiers.items()})
    arrays["strings"] = np.frombuffer(json.dumps(index.strings.strings).encode(), np.uint8)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    if model is not None:
        arrays["model"] = np.frombuffer(model.to_json().encode(), np.uint8)
    with atomic_writer(path) as fh:
        # numpy's stub has `allow_pickle: bool` beside `**kwds: ArrayLike`, and mypy checks a
        # **dict against every keyword: it cannot tell that no key here is "allow_pickle"
        np.savez(fh, **arrays)  # type: ignore[arg-type]


def read_meta(path: Path) -> dict[str, Any] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(data["meta"].tobytes())
    except Exception:  # unreadable, truncated, not an npz: no meta
        return None
    return meta if isinstance(meta, dict) else None


class IndexRejected(Exception):
    """A saved index that cannot be used (the message says why, for the log)."""


def _check(index: MatchIndex, records: int | None) -> None:
    """Raise IndexRejected unless the arrays fit together (a truncated or tampered file can
    hold readable arrays of the wrong lengths, which would match the wrong rows)."""
    n = len(index)
    if records is not None and n != records:
        raise IndexRejected(f"it holds {n} records, the sources {records}")
    per_record = {"sex": index.sex, "postcode": index.postcode, "sector": index.sector,
                  "district": index.district, "addr_number": index.addr_number,
                  "addr_flat": index.addr_flat, "addr_street": index.addr_street,
                  "addr_locality": index.addr_locality, "addr_key": index.addr_key,
                  **index.identifiers}
    for name, array in per_record.items():
        if len(array) != n:
            raise IndexRejected(f"{name} has {len(array)} rows, not {n}")
    names = len(index.name_family)
    starts = index.name_start
    if (len(starts) != n + 1 or (n and (starts[0] != 0 or starts[-1] != names))
            or np.any(np.diff(starts) < 0)):
        raise IndexRejected("the name offsets do not fit the names")
    if len(index.name_given) != names or len(index.name_other) != names:
        raise IndexRejected("the name columns differ in length")
    if len(index.key_rows) != len(index.key_hashes):
        raise IndexRejected("the blocking keys and their rows differ in length")
    if len(index.key_rows) and (index.key_rows.min() < 0 or index.key_rows.max() >= n):
        raise IndexRejected("a blocking key points past the records")
    if np.any(index.key_hashes[1:] < index.key_hashes[:-1]):
        raise IndexRejected("the blocking keys are not sorted")
    strings = len(index.strings.strings)
    for name in ("name_given", "name_other", "name_family", "postcode", "sector", "district",
                 "addr_number", "addr_flat", "addr_street", "addr_locality", "addr_key"):
        ids = getattr(index, name)
        if ids.size and (ids.min() < -1 or ids.max() >= strings):
                raise IndexRejected(f"{name} names a string the index does not hold")
    for name in ("family_count", "given_count", "postcode_count", "address_count"):
        if len(getattr(index, name)) != strings:
            raise IndexRejected(f"{name} does not count every string")
    if len(index.dob_values) != len(index.dob_counts) or len(index.premises_keys) != len(
            index.premises_counts):
        raise IndexRejected("a frequency table's values and counts differ in length")


def load(path: Path, source_fingerprint: str, records: int | None = None
         ) -> tuple[MatchIndex, MatchModel | None] | None:
    """The saved index (and its calibration, when one was saved) when it was built from this
    content in this format and its arrays fit together (and hold `records` rows, when
    given); else None (rebuild), logged."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(data["meta"].tobytes())
            if meta.get("format") != FORMAT or meta.get("fingerprint") != source_fingerprint:
                return None
            strings = Interner(json.loads(data["strings"].tobytes()))
            arrays = {name: data[name] for name in ARRAYS}
            identifiers = {kind: data[f"id_{kind}"] for kind in IDENTIFIER_WIDTHS}
            model = (MatchModel.from_json(data["model"].tobytes().decode())
                     if "model" in data.files else None)
        index = MatchIndex(strings=strings, identifiers=identifiers, **arrays)
        if meta.get("records") != len(index):
            raise IndexRejected("its header and its arrays disagree on the record count")
        _check(index, records)
    except IndexRejected as exc:
        log.warning("saved_index_rejected", reason=str(exc))
        return None
    except Exception as exc:  # a truncated or corrupt archive: zip, CRC, JSON, numpy errors
        log.warning("saved_index_rejected", reason=f"unreadable ({type(exc).__name__})")
        return None
    return index, model
