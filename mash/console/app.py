"""The console's web application: FastAPI routes rendering Jinja2 templates.

Every page but sign-in needs a session; every POST checks the session's CSRF token
(csrf.py). The analyst's token is kept server-side (sessions.py) and sent to the broker,
which verifies it again, on each call (broker_client.py). Nothing the analyst types about a
person is logged. The pages are in the routes_*.py modules; this composes them, and runs
the cases' background follow-ups (case_follow_up.py) while the app is being served.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from mash.console.broker_client import Broker
from mash.console.case_follow_up import CaseFollowUp
from mash.console.cases import KeptLookups
from mash.console.config import ConsoleConfig
from mash.console.oidc import OidcClient
from mash.console.pages import Pages, add_error_pages
from mash.console.renewal import TokenRenewal, add_token_renewal
from mash.console.routes_cases import add_case_routes
from mash.console.routes_ig import add_ig_routes
from mash.console.routes_lookups import add_lookup_routes
from mash.console.routes_report import add_report_routes
from mash.console.routes_signin import add_signin_routes
from mash.console.security import add_security_headers
from mash.console.sessions import SessionStore, SessionTable

HERE = Path(__file__).parent


def create_app(cfg: ConsoleConfig) -> FastAPI:
    sessions = SessionStore(
        cfg.session_secret, dt.timedelta(minutes=cfg.session_minutes),
        table=SessionTable(cfg.session_store, cfg.session_secret) if cfg.session_store else None)
    broker = Broker(cfg)
    # with `cases:` in console.yaml, cases and each lookup's result are kept there
    # (encrypted, for the retention): My lookups reopens a result (audited) without asking
    # again, and a case's agencies still NOT CHECKED are asked again in the background
    follow_ups = (CaseFollowUp(cfg.cases.open(), broker,
                               sweep_seconds=cfg.cases.follow_up_seconds,
                               ask_again=dt.timedelta(minutes=cfg.cases.ask_again_minutes))
                  if cfg.cases else None)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(follow_ups.run(sessions)) if follow_ups else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(title="MASH console", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.sessions = sessions
    app.state.case_follow_ups = follow_ups
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    pages = Pages(cfg, sessions)
    oidc = OidcClient(cfg.oidc) if cfg.oidc else None
    # the later middleware runs first: renewal (and its 503 while sessions cannot be read)
    # before the size limit and the security headers
    add_security_headers(app)
    add_token_renewal(app, TokenRenewal(cfg, sessions, oidc) if oidc is not None else None)
    add_error_pages(app, pages)
    add_signin_routes(app, pages=pages, oidc=oidc)
    kept = None
    if follow_ups is not None:
        add_case_routes(app, pages=pages, broker=broker, follow_ups=follow_ups)
        kept = KeptLookups(follow_ups.store)
    add_lookup_routes(app, pages=pages, broker=broker, kept=kept)
    add_ig_routes(app, pages=pages)
    add_report_routes(app, pages=pages)
    return app
