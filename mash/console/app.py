"""The console's web application: FastAPI routes rendering Jinja2 templates.

Every page but sign-in needs a session; every POST checks the session's CSRF token
(csrf.py). The analyst's token is kept server-side (sessions.py) and sent to the broker,
which verifies it again, on each call (broker_client.py). Nothing the analyst types about a
person is logged. The pages are in the routes_*.py modules; this composes them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from mash.console.broker_client import Broker
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
    app = FastAPI(title="MASH console", docs_url=None, redoc_url=None, openapi_url=None)
    sessions = SessionStore(
        cfg.session_secret, dt.timedelta(minutes=cfg.session_minutes),
        table=SessionTable(cfg.session_store, cfg.session_secret) if cfg.session_store else None)
    app.state.sessions = sessions
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    pages = Pages(cfg, sessions)
    broker = Broker(cfg)
    oidc = OidcClient(cfg.oidc) if cfg.oidc else None
    # the later middleware runs first: renewal (and its 503 while sessions cannot be read)
    # before the size limit and the security headers
    add_security_headers(app)
    add_token_renewal(app, TokenRenewal(cfg, sessions, oidc) if oidc is not None else None)
    add_error_pages(app, pages)
    add_signin_routes(app, pages=pages, oidc=oidc)
    # with `cases:` in console.yaml, each lookup's result is kept there (encrypted, for the
    # retention) so that My lookups reopens it (audited) without asking again
    kept = add_case_routes(app, pages=pages, broker=broker)
    add_lookup_routes(app, pages=pages, broker=broker, kept=kept)
    add_ig_routes(app, pages=pages)
    add_report_routes(app, pages=pages)
    return app
