"""Agency record sources: CSV files, SQLite files and any SQLAlchemy database URL."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, PlainValidator, model_validator

from mash import dberrors
from mash.agent.sources.files import FileChanged, FileDigest, stable_text
from mash.agent.sources.mapping import DEFAULT_DATE_FORMATS, ColumnMapping, RowError, map_row
from mash.config import (
    ConfigModel,
    File,
    Invalid,
    Text,
    one_of,
    text_list,
    whole,
)
from mash.config import number as bounded
from mash.errors import ConfigError, MashError
from mash.logs import get_logger
from mash.records import PersonRecord

log = get_logger(__name__)
SOURCE_TYPES = ("csv", "sqlite", "sql")
# Defaults of the plausibility bounds (see plausibility.py and the README).
MIN_RECORDS = 1
MAX_SHRINK_PERCENT = 10.0
MAX_REJECTED_PERCENT = 10.0


class Problem(StrEnum):
    """Why a load of the sources was not used: a stable code for logs, metrics and status."""

    UNREADABLE = "unreadable"  # missing, not permitted, not text in the encoding
    COLUMNS_MISSING = "columns_missing"  # the mapping names columns the source lacks
    DATABASE_ERROR = "database_error"  # the database could not be reached or refused
    CHANGED_WHILE_READING = "changed_while_reading"  # a file rewritten as it was read
    TOO_FEW_RECORDS = "too_few_records"  # below min_records (an empty extract)
    SHRANK = "shrank"  # far fewer records than the last good load
    ROWS_REJECTED = "rows_rejected"  # too many rows could not become records
    VALUES_UNREADABLE = "values_unreadable"  # dates or identifiers unreadable en masse
    VALUES_LOST = "values_lost"  # far fewer records with a date, postcode... than before
    LOAD_FAILED = "load_failed"  # the agent itself failed while loading

    @property
    def transient(self) -> bool:
        """Worth trying again at the next refresh even if the source looks unchanged."""
        return self in (Problem.UNREADABLE, Problem.DATABASE_ERROR,
                        Problem.CHANGED_WHILE_READING, Problem.LOAD_FAILED)


def _column_mapping(value: Any) -> ColumnMapping:
    if not isinstance(value, ColumnMapping):
        raise Invalid(f"expected a mapping, got {type(value).__name__}")
    return value


# The settings each type of source reads (beside name, type, the mapping and the bounds).
KIND_SETTINGS = {
    "csv": ("path", "encoding"),
    "sqlite": ("path", "table", "query", "as_at_column"),
    "sql": ("url", "table", "query", "as_at_column"),
}
MAPPING_SETTINGS = ("mapping", "fields", "date_formats", "date_fields", "sex_values")


class SourceConfig(ConfigModel):
    """One of agent.yaml's `sources:`."""

    more_settings: ClassVar[frozenset[str]] = frozenset(MAPPING_SETTINGS)

    name: Text
    type: Annotated[str, BeforeValidator(one_of(*SOURCE_TYPES))]
    # the mapping, fields, date_formats, date_fields and sex_values settings (see prepare)
    mapping: Annotated[ColumnMapping, PlainValidator(_column_mapping)]
    path: File | None = None  # csv and sqlite
    url: Text | None = None  # sql: any SQLAlchemy URL
    table: Text | None = None
    query: Text | None = None
    as_at_column: Text | None = None
    encoding: Text = "utf-8-sig"
    # A load is served only within these bounds (see plausibility.py).
    min_records: Annotated[int, BeforeValidator(whole(0))] = MIN_RECORDS
    max_shrink_percent: Annotated[float, BeforeValidator(bounded(0, 100))] = MAX_SHRINK_PERCENT
    max_rejected_percent: Annotated[float, BeforeValidator(bounded(0, 100))] = (
        MAX_REJECTED_PERCENT)

    @classmethod
    def prepare(cls, data: dict[Any, Any]) -> dict[Any, Any]:
        raw = data.get("mapping")
        if raw is None or isinstance(raw, ColumnMapping):
            return data
        out = {k: v for k, v in data.items() if k not in MAPPING_SETTINGS}
        out["mapping"] = ColumnMapping.of(
            _mapping(raw), _mapping(data.get("fields", {}), "fields"),
            tuple(_texts(data.get("date_formats", list(DEFAULT_DATE_FORMATS)), "date_formats")),
            tuple(_texts(data.get("date_fields", []), "date_fields")),
            _mapping(data.get("sex_values", {}), "sex_values"))
        return out

    @model_validator(mode="after")
    def _kind(self) -> SourceConfig:
        allowed = KIND_SETTINGS[self.type]
        wrong = sorted(k for s in KIND_SETTINGS.values() for k in s
                       if k not in allowed and k in self.model_fields_set)
        if wrong:
            known = sorted({"name", "type", "min_records", "max_shrink_percent",
                            "max_rejected_percent", *MAPPING_SETTINGS, *allowed})
            raise Invalid(f"unknown setting {', '.join(map(repr, wrong))} for a {self.type} "
                          f"source (known here: {', '.join(known)})", key="")
        needed = "url" if self.type == "sql" else "path"
        if getattr(self, needed) is None:
            raise Invalid("required setting is missing", key=needed)
        if self.type != "csv" and bool(self.table) == bool(self.query):
            raise Invalid("give either 'table' or 'query' (not both)", key="table")
        return self

    @property
    def database_url(self) -> str:
        if self.type == "sqlite":
            return f"sqlite:///{self.path}"
        assert self.url is not None
        return self.url

    def describe(self) -> str:
        """Where the source lives, without any password in a URL."""
        if self.type == "sql":
            from sqlalchemy.engine import make_url

            return make_url(self.url or "").render_as_string(hide_password=True)
        return str(self.path)


@dataclass
class LoadedSource:
    name: str
    records: list[PersonRecord]
    as_at: dt.datetime
    rows_read: int
    rows_rejected: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    # How many records have a name, a date of birth, a postcode, each identifier kind.
    present: Counter[str] = field(default_factory=Counter)
    # A file source: the file as read (size, mtime_ns, sha256), unchanged throughout.
    file_digest: FileDigest | None = None
    # SHA-256 of everything read (a file's bytes, a query's rows in order): the saved index
    # is reused only for exactly this content.
    content: str = ""
    # The records a snapshot no longer holds (they are in its record store): their count.
    kept: int = 0

    @property
    def record_count(self) -> int:
        return len(self.records) or self.kept

    def absorb(self, mapped: MappedRows) -> None:
        """Add a batch's mapping (`map_rows`) to this load's counts, in row order; the load's
        first few rejected rows are logged (the row number and reason, no values)."""
        before = sum(self.rows_rejected.values())
        for k, (number, reason) in enumerate(mapped.rejections):
            if before + k < LOGGED_REJECTIONS:
                log.warning("source_row_rejected", source=self.name, row=number, reason=reason)
        self.rows_rejected.update(mapped.rejected)
        self.warnings.update(mapped.warnings)
        self.present.update(mapped.present)
        self.kept += len(mapped.offsets)  # (a worker sends the records' offsets only)

    def without_records(self) -> LoadedSource:
        """This load's counts and as-at time, its records left to the record store."""
        return replace(self, records=[], kept=self.record_count)

    def summary(self) -> dict[str, Any]:
        """What a snapshot keeps of this load (no records, no values): saved with the index,
        so that a start from it tells the same counts and as-at time (`from_summary`)."""
        return {"name": self.name, "as_at": self.as_at.isoformat(), "rows_read": self.rows_read,
                "rows_rejected": dict(self.rows_rejected), "warnings": dict(self.warnings),
                "present": dict(self.present), "content": self.content,
                "file_digest": self.file_digest.as_dict() if self.file_digest else None,
                "records": self.record_count}

    @classmethod
    def from_summary(cls, doc: Mapping[str, Any]) -> LoadedSource:
        """A load as `summary` described it, holding no records (ValueError, KeyError or
        TypeError when the summary is not one)."""
        digest = doc["file_digest"]
        as_at = dt.datetime.fromisoformat(str(doc["as_at"]))
        if as_at.tzinfo is None:
            raise ValueError("an as-at time without its zone")
        return cls(str(doc["name"]), [], as_at, int(doc["rows_read"]),
                   Counter({str(k): int(v) for k, v in doc["rows_rejected"].items()}),
                   Counter({str(k): int(v) for k, v in doc["warnings"].items()}),
                   Counter({str(k): int(v) for k, v in doc["present"].items()}),
                   FileDigest(int(digest["size"]), int(digest["mtime_ns"]),
                              str(digest["sha256"])) if digest is not None else None,
                   str(doc["content"]), int(doc["records"]))


class SourceError(MashError):
    """A source cannot be used; the agent answers DATA_UNAVAILABLE until it can (or from its
    last good load). The message names the source and what to fix, never a value read."""

    def __init__(self, source: str, problem: Problem, message: str) -> None:
        super().__init__(f"source {source}: {message}")
        self.source = source
        self.problem = problem


def _os_error(exc: OSError) -> str:
    """An OS error without its file name (the caller names the file)."""
    return exc.strerror or type(exc).__name__


@dataclass
class _Reading:
    """One pass over a source: its rows, then what was read."""

    rows: Iterator[dict[str, Any]]
    file: Any = None  # files.StableRead for a CSV
    content: Any = field(default_factory=hashlib.sha256)
    since: dt.datetime | None = None  # only the rows changed at or after this (SQL)
    total: int | None = None  # every row of the source, counted in the same read (`since`)

    def close(self) -> None:
        """Stop reading (a connection still open is closed now, not when collected)."""
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()


def _csv_rows(cfg: SourceConfig, reading: _Reading) -> Iterator[dict[str, Any]]:
    import csv

    assert cfg.path is not None
    shown = cfg.path.name
    try:
        with stable_text(cfg.path, cfg.encoding) as (fh, read):
            reading.file = read
            reader = csv.DictReader(fh)
            missing = set(cfg.mapping.source_columns) - set(reader.fieldnames or [])
            if missing:
                raise SourceError(cfg.name, Problem.COLUMNS_MISSING,
                                  f"{shown} has no column(s) {', '.join(sorted(missing))}")
            yield from reader
    except FileChanged as exc:
        raise SourceError(cfg.name, Problem.CHANGED_WHILE_READING,
                          f"{shown} changed while it was read ({exc}); the agent reads it "
                          "again at its next refresh") from None
    except FileNotFoundError:
        raise SourceError(cfg.name, Problem.UNREADABLE, f"{cfg.path} does not exist") from None
    except OSError as exc:
        raise SourceError(cfg.name, Problem.UNREADABLE,
                          f"cannot read {cfg.path}: {_os_error(exc)}") from None
    except UnicodeDecodeError as exc:
        raise SourceError(cfg.name, Problem.UNREADABLE,
                          f"{shown} is not {cfg.encoding} text (at byte {exc.start}); set "
                          "'encoding' to the file's encoding") from None
    except csv.Error:
        raise SourceError(cfg.name, Problem.UNREADABLE,
                          f"{shown} is not a readable CSV file (csv.Error)") from None


def _engine(cfg: SourceConfig) -> Any:
    import sqlalchemy as sa

    if cfg.type == "sqlite" and cfg.path is not None and not cfg.path.exists():
        # SQLite would create an empty database there: say the file is gone instead.
        raise SourceError(cfg.name, Problem.UNREADABLE, f"{cfg.path} does not exist")
    try:
        return sa.create_engine(cfg.database_url)
    except ImportError as exc:
        raise SourceError(cfg.name, Problem.DATABASE_ERROR,
                          f"the database driver {exc.name or ''} is not installed") from None
    except sa.exc.ArgumentError:
        raise SourceError(cfg.name, Problem.DATABASE_ERROR,
                          "the database URL is not valid (ArgumentError)") from None


def _sql_rows(cfg: SourceConfig, reading: _Reading) -> Iterator[dict[str, Any]]:
    import sqlalchemy as sa

    wanted = cfg.mapping.source_columns + ([cfg.as_at_column] if cfg.as_at_column else [])
    engine = _engine(cfg)
    connecting = engine
    if reading.since is not None and engine.dialect.name == "postgresql":
        # the changed rows and the count of every row: one view of the data
        connecting = engine.execution_options(isolation_level="REPEATABLE READ")
    try:
        with connecting.connect() as conn:
            if cfg.table:
                table = sa.Table(cfg.table, sa.MetaData(), autoload_with=conn)
                missing = set(wanted) - set(table.c.keys())
                if missing:
                    raise SourceError(cfg.name, Problem.COLUMNS_MISSING,
                                      f"table {cfg.table} has no column(s) "
                                      f"{', '.join(sorted(missing))}")
                stmt: Any = sa.select(*[table.c[c] for c in wanted])
                counted: Any = table
                stamp: Any = table.c[cfg.as_at_column] if cfg.as_at_column else None
            else:
                stmt = sa.text(cfg.query or "")
                counted = stmt.columns().subquery("q")
                stamp = sa.column(cfg.as_at_column) if cfg.as_at_column else None
            if reading.since is not None:  # changed rows only, and every row counted
                if stamp is None:
                    raise ValueError("a read of changed rows needs an as-at column")
                since = reading.since
                # a column without a time zone holds UTC (as a full read takes it): compared
                # with UTC, not with the session's zone (SQLite: text, compared as text)
                if cfg.table:
                    naive = conn.dialect.name == "sqlite" or (
                        isinstance(stamp.type, sa.DateTime) and not stamp.type.timezone)
                else:  # a query's column: as its newest value comes back
                    newest = conn.execute(
                        sa.select(sa.func.max(stamp)).select_from(counted)).scalar()
                    naive = conn.dialect.name == "sqlite" or (
                        isinstance(newest, dt.datetime) and newest.tzinfo is None)
                since_value: Any = (since.astimezone(dt.UTC).replace(tzinfo=None) if naive
                                    else since)
                if cfg.table:
                    stmt = stmt.where(stamp >= since_value)
                else:
                    stmt = sa.select(sa.text("*")).select_from(counted).where(
                        stamp >= since_value)
                reading.total = conn.execute(
                    sa.select(sa.func.count()).select_from(counted)).scalar_one()
            # One statement: the database gives it one consistent view of the data.
            result = conn.execution_options(yield_per=5000).execute(stmt)
            keys = list(result.keys())
            if cfg.query:
                missing = set(wanted) - set(keys)
                if missing:
                    raise SourceError(cfg.name, Problem.COLUMNS_MISSING,
                                      f"the query returns no column(s) "
                                      f"{', '.join(sorted(missing))}")
            content = reading.content
            for row in result:
                values = tuple(row)
                content.update(repr(values).encode())
                yield dict(zip(keys, values, strict=True))
    except sa.exc.NoSuchTableError:
        raise SourceError(cfg.name, Problem.DATABASE_ERROR,
                          f"table {cfg.table} does not exist") from None
    except sa.exc.SQLAlchemyError as exc:
        raise SourceError(cfg.name, Problem.DATABASE_ERROR,
                          f"database error: {dberrors.describe(exc)}") from None
    finally:
        engine.dispose()


def count_present(record: PersonRecord, present: Counter[str]) -> None:
    """Count what the record has (a name, a date of birth, a postcode, each identifier)."""
    if record.names:
        present["name"] += 1
    if record.date_of_birth is not None:
        present["date_of_birth"] += 1
    if record.postcodes:
        present["postcode"] += 1
    for kind in record.identifiers:
        present[kind] += 1


def load_source(cfg: SourceConfig) -> LoadedSource:
    """Read and map every row. Raises SourceError when the source cannot be read at all,
    or (a file) changed while it was read."""
    loaded, records = open_source(cfg)
    loaded.records = list(records)
    return loaded


def open_source(cfg: SourceConfig) -> tuple[LoadedSource, Iterator[PersonRecord]]:
    """A load of the source and its records as they are read, one at a time (none kept):
    the load's counts, as-at time and content digest are complete once the iterator is
    exhausted (its `kept` is then the record count). The iterator raises SourceError when
    the source cannot be read at all, or (a file) changed while it was read."""
    loaded = LoadedSource(cfg.name, [], dt.datetime.now(dt.UTC), 0)
    return loaded, _records(cfg, loaded)


def open_changed(cfg: SourceConfig, since: dt.datetime
                 ) -> tuple[LoadedSource, Iterator[PersonRecord], _Reading]:
    """Like `open_source`, for an SQL or SQLite source with an as-at column: only the rows
    whose as-at value is at or after `since` (an indexed query where the column is
    indexed); the reading's `total` is then every row of the source, counted in the same
    read. The load's as-at is the latest of those rows' (or `since`, when none changed)."""
    if cfg.type == "csv" or not cfg.as_at_column:
        raise ValueError("only an SQL source with an as-at column reads its changed rows")
    loaded = LoadedSource(cfg.name, [], since, 0)
    reading = _Reading(iter(()), since=since)
    return loaded, _records(cfg, loaded, reading), reading


ROW_BATCH = 5_000  # source rows mapped at a time (in this process or a worker's)
LOGGED_REJECTIONS = 5  # a load's first rejected rows are logged (row number and reason)


@dataclass
class MappedRows:
    """A batch of source rows mapped to records, and what the mapping found: the records
    (in order), each one's offset among the batch's rows, the rejections by reason (the
    first few with their row numbers), the warnings and the fields present. Made by
    `map_rows`, added to a load by `LoadedSource.absorb`."""

    records: list[PersonRecord]
    offsets: list[int]
    rejected: Counter[str] = field(default_factory=Counter)
    rejections: list[tuple[int, str]] = field(default_factory=list)
    warnings: Counter[str] = field(default_factory=Counter)
    present: Counter[str] = field(default_factory=Counter)


def map_rows(rows: list[dict[str, Any]], mapping: ColumnMapping, source: str,
             first_number: int) -> MappedRows:
    """Map a batch of rows (``first_number``: the first one's row number in its source).
    Pure: it runs in a worker process for a large load."""
    out = MappedRows([], [])
    for offset, row in enumerate(rows):
        try:
            record = map_row(row, mapping, source, out.warnings)
        except RowError as exc:
            out.rejected[str(exc)] += 1
            if len(out.rejections) < LOGGED_REJECTIONS:
                out.rejections.append((first_number + offset, str(exc)))
        else:
            count_present(record, out.present)
            out.records.append(record)
            out.offsets.append(offset)
    return out


class RowBatches:
    """One read of a source as batches of raw rows, ``(first row number, rows)``, for a
    caller that maps them (`map_rows`, perhaps in worker processes) and `absorb`s each
    mapping into `loaded` in order; `finish` once every batch is absorbed. The iteration
    raises SourceError when the source cannot be read at all, or (a file) changed while
    it was read."""

    def __init__(self, cfg: SourceConfig, loaded: LoadedSource,
                 reading: _Reading | None = None) -> None:
        self.cfg, self.loaded = cfg, loaded
        self.reading = reading or _Reading(iter(()))
        self._started = time.monotonic()

    def __iter__(self) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        cfg, loaded, reading = self.cfg, self.loaded, self.reading
        reading.rows = _csv_rows(cfg, reading) if cfg.type == "csv" else _sql_rows(cfg, reading)
        latest: dt.datetime | None = None
        batch: list[dict[str, Any]] = []
        first = 1
        for row in reading.rows:
            batch.append(row)
            if cfg.as_at_column:
                value = row.get(cfg.as_at_column)
                if isinstance(value, dt.datetime):
                    value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
                    latest = value if latest is None or value > latest else latest
            if len(batch) >= ROW_BATCH:
                loaded.rows_read += len(batch)
                yield first, batch
                first, batch = first + len(batch), []
        if batch:
            loaded.rows_read += len(batch)
            yield first, batch
        if reading.file is not None:  # a CSV: when the data was last true is its mtime
            loaded.file_digest = reading.file.digest
            loaded.as_at = dt.datetime.fromtimestamp(reading.file.mtime, dt.UTC)
            loaded.content = loaded.file_digest.sha256 if loaded.file_digest else ""
        else:
            loaded.content = reading.content.hexdigest()
        if latest is not None:
            loaded.as_at = latest

    def finish(self) -> None:
        """Every batch read and absorbed: log the load (counts only)."""
        loaded = self.loaded
        log.info(
            "source_loaded" if self.reading.since is None else "source_changes_read",
            source=self.cfg.name,
            rows=loaded.rows_read,
            records=loaded.kept,
            rejected=sum(loaded.rows_rejected.values()),
            warnings=dict(loaded.warnings),
            seconds=round(time.monotonic() - self._started, 3),
        )


def _records(cfg: SourceConfig, loaded: LoadedSource,
             reading: _Reading | None = None) -> Iterator[PersonRecord]:
    batches = RowBatches(cfg, loaded, reading)
    for first, rows in batches:
        mapped = map_rows(rows, cfg.mapping, cfg.name, first)
        loaded.absorb(mapped)
        yield from mapped.records
    batches.finish()


def _mapping(value: Any, key: str = "mapping") -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise Invalid(f"expected a mapping, got {type(value).__name__}", key=key)
    return value


def _texts(value: Any, key: str) -> list[str]:
    try:
        return text_list(value)
    except Invalid as exc:
        raise Invalid(exc.message, key=f"{key}{exc.key or ''}") from None


def check_config(sources: list[SourceConfig]) -> None:
    names = [s.name for s in sources]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError(f"source names must be unique: {', '.join(sorted(dupes))}")
