"""The console's report page: the board report (mash.board) with its charts, for supervisors
and IG leads. The charts are drawn in the browser by the vendored Chart.js (/static/vendor),
served by the console itself: nothing is fetched from elsewhere.

GET /report?since=YYYY-MM-DD&until=YYYY-MM-DD&period=day (defaults: the last 30 days), and
the same figures as /report.json and /report.csv for the board's own tools. Reading the report
is logged (who, and the window: there is no personal data in it).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from mash.audit.report import parse_when
from mash.board import render as board_render
from mash.board.figures import PERIODS, Window, compute
from mash.console.config import ConsoleConfig
from mash.console.pages import Pages, Refused
from mash.console.sessions import Session
from mash.errors import MashError, ValidationError
from mash.logs import get_logger

log = get_logger(__name__)
# Who may read the report besides the IG roles (`ig_roles:` in console.yaml).
REPORT_ROLES = frozenset({"supervisor"})
DEFAULT_DAYS = 30


def _moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.removesuffix("Z") + "+00:00")


def window_of(cfg: ConsoleConfig, *, since: str, until: str, period: str,
              today: dt.date | None = None) -> Window:
    """The window the form asks for; ValidationError names the field."""
    today = today or dt.datetime.now(dt.UTC).date()
    since = since.strip() or (today - dt.timedelta(days=DEFAULT_DAYS)).isoformat()
    until = until.strip() or today.isoformat()
    if period not in PERIODS:
        raise ValidationError(f"Period: choose {', '.join(PERIODS)}")
    try:
        start = _moment(parse_when(since))
    except ValidationError:
        raise ValidationError(f"From: {since!r} is not a date like 2026-11-01") from None
    try:
        end = _moment(parse_when(until, end=True))
    except ValidationError:
        raise ValidationError(f"To: {until!r} is not a date like 2026-11-30") from None
    return Window(since=start, until=end, rag_hours=dict(cfg.rag_hours), period=period)


def add_report_routes(app: FastAPI, *, pages: Pages) -> None:
    """Add the report's routes to the console (called once from create_app)."""
    cfg = pages.cfg
    allowed = REPORT_ROLES | cfg.ig_roles
    app.state.report_roles = allowed  # base.html offers the page to these roles

    def reader(request: Request) -> Session:
        session = pages.need(request)
        if session.analyst.role not in allowed:
            raise Refused(403, "The report is for supervisors and information governance "
                               f"leads ({', '.join(sorted(allowed))}).")
        if cfg.audit is None:
            raise Refused(503, "This console has no audit store configured (audit: in "
                               "console.yaml), so it has nothing to report from.")
        return session

    def figures(request: Request, session: Session, fmt: str) -> dict[str, Any]:
        q = request.query_params
        window = window_of(cfg, since=q.get("since", ""), until=q.get("until", ""),
                           period=q.get("period", "day"))
        assert cfg.audit is not None
        with cfg.audit.open_store() as store:
            report = compute(store, window)
        log.info("report_read", by=session.analyst.subject, role=session.analyst.role,
                 since=report["since"], until=report["until"], format=fmt)
        return report

    @app.get("/report", response_class=HTMLResponse)
    def report_page(request: Request) -> HTMLResponse:
        session = reader(request)
        q = request.query_params
        values = {k: q.get(k, "") for k in ("since", "until")} | {
            "period": q.get("period", "day")}
        try:
            report = figures(request, session, "html")
        except (ValidationError, MashError) as exc:
            return pages.render(request, "report.html", session, status=422,
                                error=str(exc), values=values, periods=PERIODS, fragment="",
                                query="")
        query = str(request.url.query)
        return pages.render(request, "report.html", session, error="", values=values,
                            periods=PERIODS, fragment=board_render.fragment(report),
                            query=f"?{query}" if query else "")

    @app.get("/report.json")
    def report_json(request: Request) -> Response:
        session = reader(request)
        out = io.StringIO()
        board_render.write_json(_or_refuse(lambda: figures(request, session, "json")), out)
        return Response(out.getvalue(), media_type="application/json")

    @app.get("/report.csv")
    def report_csv(request: Request) -> Response:
        session = reader(request)
        out = io.StringIO()
        board_render.write_csv(_or_refuse(lambda: figures(request, session, "csv")), out)
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": 'attachment; filename="mash-report.csv"'})


def _or_refuse(make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return make()
    except (ValidationError, MashError) as exc:
        raise Refused(422, str(exc)) from None
