"""Agency record sources: CSV files, SQLite files and any SQLAlchemy database URL."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mash.agent.sources.mapping import ColumnMapping, RowError, map_row
from mash.config import Reader
from mash.errors import ConfigError
from mash.logs import get_logger
from mash.records import PersonRecord

log = get_logger(__name__)
SOURCE_TYPES = ("csv", "sqlite", "sql")


@dataclass
class SourceConfig:
    name: str
    type: str
    mapping: ColumnMapping
    path: Path | None = None  # csv and sqlite
    url: str | None = None  # sql: any SQLAlchemy URL
    table: str | None = None
    query: str | None = None
    as_at_column: str | None = None
    encoding: str = "utf-8-sig"

    @classmethod
    def read(cls, section: Reader) -> SourceConfig:
        name = section.str("name")
        kind = section.str("type", choices=SOURCE_TYPES)
        cfg = cls(name=name, type=kind, mapping=ColumnMapping.read(section))
        if kind in ("csv", "sqlite"):
            cfg.path = section.path("path")
        if kind == "csv":
            cfg.encoding = section.str("encoding", "utf-8-sig")
        else:
            if kind == "sql":
                cfg.url = section.str("url")
            cfg.table = section.str("table", None)
            cfg.query = section.str("query", None)
            if bool(cfg.table) == bool(cfg.query):
                raise section.error("table", "give either 'table' or 'query' (not both)")
            cfg.as_at_column = section.str("as_at_column", None)
        section.done()
        return cfg

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

            return make_url(self.url).render_as_string(hide_password=True)
        return str(self.path)


@dataclass
class LoadedSource:
    name: str
    records: list[PersonRecord]
    as_at: dt.datetime
    rows_read: int
    rows_rejected: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)


class SourceError(Exception):
    """A source cannot be read at all; the agent answers DATA_UNAVAILABLE until it can."""


def _csv_rows(cfg: SourceConfig) -> Iterator[dict[str, Any]]:
    import csv

    assert cfg.path is not None
    try:
        with cfg.path.open(newline="", encoding=cfg.encoding) as fh:
            reader = csv.DictReader(fh)
            missing = set(cfg.mapping.source_columns) - set(reader.fieldnames or [])
            if missing:
                raise SourceError(f"source {cfg.name}: {cfg.path.name} has no column(s) "
                                  f"{', '.join(sorted(missing))}")
            yield from reader
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"source {cfg.name}: cannot read {cfg.path}: {exc}") from None


def _sql_rows(cfg: SourceConfig) -> Iterator[dict[str, Any]]:
    import sqlalchemy as sa

    wanted = cfg.mapping.source_columns + ([cfg.as_at_column] if cfg.as_at_column else [])
    try:
        engine = sa.create_engine(cfg.database_url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise SourceError(f"source {cfg.name}: bad database URL: {exc}") from None
    try:
        with engine.connect() as conn:
            if cfg.table:
                table = sa.Table(cfg.table, sa.MetaData(), autoload_with=conn)
                missing = set(wanted) - set(table.c.keys())
                if missing:
                    raise SourceError(
                        f"source {cfg.name}: table {cfg.table} has no column(s) "
                        f"{', '.join(sorted(missing))}")
                stmt: Any = sa.select(*[table.c[c] for c in wanted])
            else:
                stmt = sa.text(cfg.query or "")
            result = conn.execution_options(yield_per=5000).execute(stmt)
            keys = list(result.keys())
            if cfg.query:
                missing = set(wanted) - set(keys)
                if missing:
                    raise SourceError(f"source {cfg.name}: query returns no column(s) "
                                      f"{', '.join(sorted(missing))}")
            for row in result:
                yield dict(zip(keys, row, strict=True))
    except sa.exc.NoSuchTableError:
        raise SourceError(f"source {cfg.name}: table {cfg.table} does not exist") from None
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise SourceError(f"source {cfg.name}: database error: {reason}") from None
    finally:
        engine.dispose()


def _as_at(cfg: SourceConfig) -> dt.datetime:
    """When the data was last true: a CSV's modification time, else the time it was read."""
    if cfg.type == "csv" and cfg.path is not None:
        return dt.datetime.fromtimestamp(cfg.path.stat().st_mtime, dt.UTC)
    return dt.datetime.now(dt.UTC)


def iter_rows(cfg: SourceConfig) -> Iterator[dict[str, Any]]:
    return _csv_rows(cfg) if cfg.type == "csv" else _sql_rows(cfg)


def load_source(cfg: SourceConfig) -> LoadedSource:
    """Read and map every row. Raises SourceError when the source cannot be read at all."""
    started = time.monotonic()
    loaded = LoadedSource(cfg.name, [], _as_at(cfg), 0)
    latest: dt.datetime | None = None
    for number, row in enumerate(iter_rows(cfg), start=1):
        loaded.rows_read += 1
        try:
            loaded.records.append(map_row(row, cfg.mapping, cfg.name, loaded.warnings))
        except RowError as exc:
            loaded.rows_rejected[str(exc)] += 1
            if sum(loaded.rows_rejected.values()) <= 5:
                log.warning("source_row_rejected", source=cfg.name, row=number, reason=str(exc))
        if cfg.as_at_column:
            value = row.get(cfg.as_at_column)
            if isinstance(value, dt.datetime):
                value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
                latest = value if latest is None or value > latest else latest
    if latest is not None:
        loaded.as_at = latest
    log.info(
        "source_loaded",
        source=cfg.name,
        rows=loaded.rows_read,
        records=len(loaded.records),
        rejected=sum(loaded.rows_rejected.values()),
        warnings=dict(loaded.warnings),
        seconds=round(time.monotonic() - started, 3),
    )
    return loaded


def check_config(sources: list[SourceConfig]) -> None:
    names = [s.name for s in sources]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError(f"source names must be unique: {', '.join(sorted(dupes))}")
