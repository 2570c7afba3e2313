"""What every console page shares: who is signed in and what their role may do, the
refusals a handler raises, and rendering a template with the navigation's context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from mash.console import ig
from mash.console.config import ConsoleConfig
from mash.console.sessions import COOKIE, Session, SessionStore
from mash.policy.decisions import LoadedPolicy
from mash.policy.store import PolicyStore

HERE = Path(__file__).parent


class Refused(Exception):
    """Raised by a handler: answer with this status and page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SignInNeeded(Exception):
    """A page was asked for without a session: the browser is sent to sign in."""


class Pages:
    """The signed-in analyst of a request, what their role is offered, and the rendering of
    a page; one per console app, shared by its routes."""

    def __init__(self, cfg: ConsoleConfig, sessions: SessionStore) -> None:
        self.cfg = cfg
        self.sessions = sessions
        self.policy_store = PolicyStore(cfg.policy) if cfg.policy else None
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.autoescape = True

    def current(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def need(self, request: Request) -> Session:
        """The request's session; without one a GET is sent to sign in, a POST refused."""
        session = self.current(request)
        if session is None:
            if request.method == "GET":
                raise SignInNeeded()
            raise Refused(403, "You are not signed in (or your session has ended). Sign in "
                               "again.")
        return session

    def is_ig(self, session: Session) -> bool:
        return session.analyst.role in self.cfg.ig_roles

    def may_look_up(self, session: Session) -> bool:
        """Whether the session's role may look people up: a role some agreement grants
        lookups to (without a loaded bundle: any role but the IG roles). IG-only users are
        not offered the lookup form, its history or cases."""
        policy = ig.policy(self.policy_store)
        if policy is not None:
            return session.analyst.role in ig.lookup_roles(policy)
        return session.analyst.role not in self.cfg.ig_roles

    def need_lookups(self, request: Request) -> Session:
        session = self.need(request)
        if not self.may_look_up(session):
            raise Refused(403, f"Your role ({session.analyst.role}) is not given lookups by "
                               "any agreement: the console does not offer them to it.")
        return session

    def need_ig(self, request: Request) -> Session:
        session = self.need(request)
        if not self.is_ig(session):
            raise Refused(403, "This page is for information governance leads "
                               f"({', '.join(sorted(self.cfg.ig_roles))}).")
        return session

    def purposes(self) -> dict[str, list[str]] | None:
        """The loaded agreements' purposes and their stages (None without a bundle)."""
        policy = ig.policy(self.policy_store)
        if policy is None:
            return None
        return {name: list(spec["stages"])
                for name, spec in policy.bundle.federation["purposes"].items()}

    def loaded_policy(self) -> LoadedPolicy:
        policy = ig.policy(self.policy_store)
        if policy is None:
            reason = (self.policy_store.error if self.policy_store else None) or \
                "this console has no policy bundle configured (policy: in console.yaml)"
            raise Refused(503, f"No signed agreements bundle is loaded: {reason}")
        return policy

    def render(self, request: Request, name: str, session: Session | None, status: int = 200,
               **context: Any) -> HTMLResponse:
        return self.templates.TemplateResponse(request, name, {
            "session": session, "is_ig": bool(session and self.is_ig(session)),
            "may_lookup": bool(session and self.may_look_up(session)),
            "csrf": session.csrf if session else "", "path": request.url.path,
            "policy_enabled": self.policy_store is not None,
            "audit_enabled": self.cfg.audit is not None, **context}, status_code=status)


def add_error_pages(app: FastAPI, pages: Pages) -> None:
    """Refused, SignInNeeded and 404 as the console's own pages."""

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> HTMLResponse:
        return pages.render(request, "error.html", pages.current(request), status=exc.status,
                            message=exc.message,
                            title="Refused" if exc.status in (401, 403) else "Problem")

    @app.exception_handler(SignInNeeded)
    async def sign_in_needed(request: Request, _exc: SignInNeeded) -> RedirectResponse:
        return RedirectResponse("/signin", status_code=303)

    @app.exception_handler(404)
    async def not_found(request: Request, _exc: Exception) -> HTMLResponse:
        return pages.render(request, "error.html", pages.current(request), status=404,
                            message="There is no such page.", title="Not found")
