"""`mash report`: the performance report for partners and the safeguarding board."""

from __future__ import annotations

import datetime as dt
import io
import sys
from pathlib import Path

import typer

from mash.audit.chain import TIME_FORMAT
from mash.audit.report import parse_when
from mash.board import render
from mash.board.figures import PERIODS, Window, compute
from mash.broker import config as broker_config
from mash.broker.routing import build_routing
from mash.cli.common import USAGE, fail, guarded
from mash.context import DEFAULT_RAG_HOURS
from mash.errors import ValidationError
from mash.files import write_atomic
from mash.logs import configure

FORMATS = ("json", "csv", "html")


def parse_rag_hours(text: str) -> dict[str, float]:
    """'red=4,amber=24,green=72' (any of them; the rest keep their defaults)."""
    hours = dict(DEFAULT_RAG_HOURS)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if not sep or name not in hours:
            raise ValidationError(f"--rag-hours {item!r}: write red=4,amber=24,green=72")
        try:
            hours[name] = float(value)
        except ValueError:
            raise ValidationError(f"--rag-hours {item!r}: {value!r} is not a number") from None
        if not 0 < hours[name] <= 24 * 31:
            raise ValidationError(f"--rag-hours {item!r}: hours must be above 0 and at most "
                                  f"{24 * 31}")
    if not hours["red"] <= hours["amber"] <= hours["green"]:
        raise ValidationError("--rag-hours: red must be soonest, then amber, then green")
    return hours


def _moment(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=dt.UTC)


def report(
    config: Path = typer.Option(None, "--config", envvar="MASH_BROKER_CONFIG",
                                help="The broker's config (its audit: store and agencies). "
                                     "Env: MASH_BROKER_CONFIG."),
    since: str = typer.Option(..., "--since", help="From this date or ISO time (UTC)."),
    until: str = typer.Option("", "--until", help="Up to this date (inclusive) or ISO time; "
                                                  "default now."),
    fmt: str = typer.Option("json", "--format", help="json, csv or html."),
    period: str = typer.Option("day", "--period", help="Periods over time: day, week, month."),
    rag_hours: str = typer.Option("", "--rag-hours",
                                  help="RAG deadlines in hours, e.g. red=4,amber=24,green=72 "
                                       "(the defaults)."),
    out: Path = typer.Option(None, "--out", help="Write to this file (default: stdout)."),
) -> None:
    """Lookups by purpose, stage and urgency; the share answered within their RAG deadline;
    per agency, answer states, NOT CHECKED reasons, availability and completeness over time,
    and the median answer time. Counts only, below 5 suppressed."""
    if config is None:
        fail("no broker config: pass --config broker.yaml or set MASH_BROKER_CONFIG", USAGE)
    if fmt not in FORMATS:
        fail(f"--format {fmt!r} is not one of {', '.join(FORMATS)}", USAGE)
    if period not in PERIODS:
        fail(f"--period {period!r} is not one of {', '.join(PERIODS)}", USAGE)

    configure("warning", service="report")  # logs on stderr: the report is on stdout

    def run() -> str:
        cfg = broker_config.load(config)
        start = _moment(parse_when(since))
        end = _moment(parse_when(until, end=True)) if until.strip() else dt.datetime.now(dt.UTC)
        routing = build_routing(cfg)  # the agencies registered: the bundle's, or broker.yaml's
        routing.store.reload()
        window = Window(since=start, until=end, rag_hours=parse_rag_hours(rag_hours),
                        period=period, agencies=routing.registered())
        with cfg.audit.open_store() as store:
            figures = compute(store, window)
        if fmt == "html":
            return render.page(figures)
        buffer = io.StringIO()
        (render.write_csv if fmt == "csv" else render.write_json)(figures, buffer)
        return buffer.getvalue()

    text = guarded(run)
    if out is None:
        sys.stdout.write(text)
    else:
        guarded(lambda: write_atomic(out, text.encode()))
        typer.echo(f"report written to {out}", err=True)
