"""Saving the match index to disk, and knowing when it no longer fits its sources.

One file (no pickle): a JSON header holding the index format, the fingerprint of the
content it was built from (`index_fingerprint`: the bytes or rows actually read, the mapping,
the key and index formats), its match model (the calibration), where each array lies and the
SHA-256 of the data; then every array's raw bytes, aligned, which `load` maps read-only with
numpy's memmap instead of copying (the operating system pages them in as matching touches
them, and can drop them again). A fingerprint mismatch, another index format (an older
``.npz``), an unreadable, truncated, damaged (its SHA-256 differs) or inconsistent file
means: rebuild (and calibrate again).

`fingerprint` is cheaper and coarser (file size, mtime and hash; SQL row count and latest
as-at): it tells a running agent when to read its sources again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from mash.files import atomic_writer
from mash.logs import get_logger
from mash.matching.blocking import KEY_VERSION
from mash.matching.index import ARRAYS, IDENTIFIER_WIDTHS, Interner, MatchIndex
from mash.matching.model import MatchModel

if TYPE_CHECKING:
    from mash.agent.sources import SourceConfig

log = get_logger(__name__)
FORMAT = 4  # 2: addresses, term-frequency counts and the match model; 3: memory-mapped;
# 4: five locality words an address and their counts (locality_count)


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


MAGIC = b"MASHIDX\x00"  # then the format as 8 bytes little-endian, then the header length
ALIGN = 4096  # the header is padded to this; each array starts at a multiple of 64 after it
_CHUNK = 1 << 22


def _aligned(offset: int, to: int = 64) -> int:
    return -(-offset // to) * to


def _sections(index: MatchIndex) -> dict[str, np.ndarray]:
    arrays = dict(index.arrays())
    arrays.update({f"id_{kind}": column for kind, column in index.identifiers.items()})
    arrays["strings"] = np.frombuffer(json.dumps(index.strings.strings).encode(), np.uint8)
    return {name: np.ascontiguousarray(array) for name, array in arrays.items()}


def save(index: MatchIndex, path: Path, source_fingerprint: str,
         model: MatchModel | None = None, *, extra: dict[str, Any] | None = None) -> None:
    """Write atomically (mash.files: a temporary file flushed and renamed into place): a
    JSON header (the meta, the model, where each array lies, the data's SHA-256), then every
    array's raw bytes, aligned, so that `load` maps them rather than copies them. `extra`:
    more of the caller's own (JSON) in the header, returned by `read_meta`."""
    arrays = _sections(index)
    table: dict[str, dict[str, Any]] = {}
    offset = 0
    digest = hashlib.sha256()
    for name, array in arrays.items():
        start = _aligned(offset)
        digest.update(bytes(start - offset))
        digest.update(array.data.cast("B") if array.nbytes else b"")
        table[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "offset": start}
        offset = start + array.nbytes
    header = {"format": FORMAT, "fingerprint": source_fingerprint, "records": len(index),
              "arrays": table, "data_bytes": offset, "data_sha256": digest.hexdigest(),
              "model": model.to_json() if model is not None else None, "extra": extra or {}}
    head = json.dumps(header, sort_keys=True).encode()
    data_start = _aligned(len(MAGIC) + 16 + len(head), ALIGN)
    with atomic_writer(path) as fh:
        fh.write(MAGIC + FORMAT.to_bytes(8, "little") + len(head).to_bytes(8, "little"))
        fh.write(head)
        fh.write(bytes(data_start - len(MAGIC) - 16 - len(head)))
        written = 0
        for name, array in arrays.items():
            start = table[name]["offset"]
            fh.write(bytes(start - written))
            if array.nbytes:
                fh.write(array.data.cast("B"))
            written = start + array.nbytes


def _header(fh: BinaryIO) -> tuple[dict[str, Any], int]:
    """The header of an open index file and where its data starts; ValueError when it is not
    an index of this format (an older one is rebuilt)."""
    lead = fh.read(len(MAGIC) + 16)
    if len(lead) != len(MAGIC) + 16 or not lead.startswith(MAGIC):
        raise ValueError("not an index file of this format")
    if int.from_bytes(lead[len(MAGIC):len(MAGIC) + 8], "little") != FORMAT:
        raise ValueError("an index file of another format")
    size = int.from_bytes(lead[len(MAGIC) + 8:], "little")
    if size > 1 << 26:
        raise ValueError("an implausible header")
    header = json.loads(fh.read(size))
    if not isinstance(header, dict):
        raise ValueError("an implausible header")
    return header, _aligned(len(MAGIC) + 16 + size, ALIGN)


def read_meta(path: Path) -> dict[str, Any] | None:
    """The saved index's header (format, fingerprint, records, extra...), reading nothing
    else; None when there is none of this format."""
    try:
        with path.open("rb") as fh:
            return _header(fh)[0]
    except Exception:  # unreadable, truncated, another format: no meta
        return None


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
    for name in ("family_count", "given_count", "postcode_count", "address_count",
                 "locality_count"):
        if len(getattr(index, name)) != strings:
            raise IndexRejected(f"{name} does not count every string")
    if len(index.dob_values) != len(index.dob_counts) or len(index.premises_keys) != len(
            index.premises_counts):
        raise IndexRejected("a frequency table's values and counts differ in length")


def _verify(fh: BinaryIO, start: int, header: dict[str, Any]) -> None:
    """Raise IndexRejected unless the data is all there and is what was written (read
    through the file, not the mapping: the check leaves nothing resident)."""
    size = int(header["data_bytes"])
    fh.seek(0, 2)
    if fh.tell() != start + size:
        raise IndexRejected(f"the file holds {fh.tell() - start} bytes of data, not {size}")
    fh.seek(start)
    digest = hashlib.sha256()
    while chunk := fh.read(_CHUNK):
        digest.update(chunk)
    if digest.hexdigest() != header["data_sha256"]:
        raise IndexRejected("its data is not what was written (damaged)")


def _mapped(path: Path, start: int, spec: dict[str, Any]) -> np.ndarray:
    dtype, shape = np.dtype(spec["dtype"]), tuple(int(d) for d in spec["shape"])
    if dtype.hasobject:
        raise IndexRejected("an array of objects")
    if int(np.prod(shape)) == 0:
        return np.empty(shape, dtype)
    # a plain ndarray over the mapping (its base): numpy's memmap subclass would make every
    # array derived from it a memmap too, at a cost on each operation of the hot path
    mapped = np.memmap(path, dtype=dtype, mode="r", offset=start + int(spec["offset"]),
                       shape=shape)
    return mapped.view(np.ndarray)


def load(path: Path, source_fingerprint: str, records: int | None = None
         ) -> tuple[MatchIndex, MatchModel | None] | None:
    """The saved index (and its calibration, when one was saved) when it was built from this
    content in this format, its data is whole and its arrays fit together (and hold
    `records` rows, when given); else None (rebuild), logged. The arrays are mapped from the
    file read-only (numpy memmap), not copied: pages are read as matching touches them."""
    if not path.exists():
        return None
    try:
        with path.open("rb") as fh:
            meta, start = _header(fh)
            if meta.get("fingerprint") != source_fingerprint:
                return None
            _verify(fh, start, meta)
        table = meta["arrays"]
        strings_spec = table["strings"]
        with path.open("rb") as fh:
            fh.seek(start + int(strings_spec["offset"]))
            strings = Interner(json.loads(fh.read(int(np.prod(strings_spec["shape"])))))
        arrays = {name: _mapped(path, start, table[name]) for name in ARRAYS}
        identifiers = {kind: _mapped(path, start, table[f"id_{kind}"])
                       for kind in IDENTIFIER_WIDTHS}
        model = (MatchModel.from_json(meta["model"]) if meta.get("model") is not None
                 else None)
        index = MatchIndex(strings=strings, identifiers=identifiers, **arrays)
        if meta.get("records") != len(index):
            raise IndexRejected("its header and its arrays disagree on the record count")
        _check(index, records)
    except IndexRejected as exc:
        log.warning("saved_index_rejected", reason=str(exc))
        return None
    except Exception as exc:  # another format, a truncated or corrupt file: JSON, numpy...
        log.warning("saved_index_rejected", reason=f"unreadable ({type(exc).__name__})")
        return None
    return index, model
