"""The console's web application: FastAPI routes rendering Jinja2 templates.

Every page but sign-in needs a session; every POST checks the session's CSRF token. The
analyst's token is kept server-side (see sessions.py) and sent to the broker, which verifies
it again, on each call. Nothing the analyst types about a person is logged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from mash.audit.errors import AuditError
from mash.audit.report import Found, search
from mash.audit.search_terms import search_criteria
from mash.cases.store import CaseStoreError
from mash.client import BrokerClient, ClientConfig
from mash.console import cases as cases_page
from mash.console import ig
from mash.console import report as report_page
from mash.console.config import ConsoleConfig
from mash.console.forms import LABELS, LookupForm, validate
from mash.console.oidc import OidcClient, Tokens
from mash.console.sessions import (
    COOKIE,
    LOGIN_CSRF_COOKIE,
    LookupRecord,
    Session,
    SessionStore,
    SessionStoreError,
    SessionTable,
    UnsignedSession,
)
from mash.console.views import agents_view, lookup_view, rag_timer, summary
from mash.errors import IdentityError, MashError, ValidationError
from mash.identity.dpop import ClientKey
from mash.identity.tokens import Analyst
from mash.logs import get_logger
from mash.policy.store import PolicyStore
from mash.v1 import lookup_pb2

log = get_logger(__name__)
HERE = Path(__file__).parent
MAX_FORM_BYTES = 64 * 1024
OIDC_STATE_COOKIE = "mash_oidc_state"
REFRESH_MARGIN = dt.timedelta(seconds=60)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # pages carry personal data: never cache them
    "Strict-Transport-Security": "max-age=31536000",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
GRPC_MESSAGES = {
    grpc.StatusCode.UNAUTHENTICATED: "The broker did not accept your sign-in token. Sign in "
                                     "again with a current token.",
    grpc.StatusCode.PERMISSION_DENIED: "The broker refused this request for your role or "
                                       "agency.",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "Too many lookups in a short time: wait a minute and "
                                        "try again.",
    grpc.StatusCode.UNAVAILABLE: "The broker could not be reached. NO agency was checked: "
                                 "try again, or use the agencies' phone routes.",
    grpc.StatusCode.DEADLINE_EXCEEDED: "The broker did not answer in time. NO agency was "
                                       "checked: try again.",
}


class Refused(Exception):
    """Raised by a handler: answer with this status and page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SignInNeeded(Exception):
    pass


class Broker:
    """The analyst's gRPC client, with the signed-in analyst's token on each call and, for a
    session with a proof key, each lookup signed with it (a fresh proof per attempt)."""

    def __init__(self, cfg: ConsoleConfig) -> None:
        self.cfg = cfg

    def client(self, session: Session) -> BrokerClient:
        # UnsignedSession (nothing sent) for a bound token the session holds no key for
        return BrokerClient(ClientConfig(self.cfg.broker_address, self.cfg.broker_server_name,
                                         self.cfg.client_tls, session.token,
                                         proof_key=session.signing_key()))

    def lookup(self, session: Session,
               request: lookup_pb2.LookupRequest) -> lookup_pb2.LookupResponse:
        with self.client(session) as client:
            return client.lookup(request, timeout=self.cfg.broker_timeout_seconds)

    def agents(self, session: Session) -> lookup_pb2.ListAgentsResponse:
        with self.client(session) as client:
            return client.list_agents(timeout=self.cfg.broker_timeout_seconds)


def check_key(analyst: Analyst, key: ClientKey | None) -> None:
    """Refuse (IdentityError) a token not bound to exactly the session's key: with a key,
    cnf.jkt must name it; without one, the token must not be bound (its key is elsewhere)."""
    if key is not None and analyst.key_thumbprint != key.thumbprint:
        raise IdentityError("the identity provider's token is not bound to this session's "
                            "proof key (cnf.jkt): enable DPoP for the console's client")
    if key is None and analyst.key_thumbprint:
        raise IdentityError("the token is bound to a proof key (cnf.jkt) this console does "
                            "not hold, so its lookups could not be signed: sign in through "
                            "the identity provider instead")


def create_app(cfg: ConsoleConfig) -> FastAPI:
    app = FastAPI(title="MASH console", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.autoescape = True
    sessions = SessionStore(
        cfg.session_secret, dt.timedelta(minutes=cfg.session_minutes),
        table=SessionTable(cfg.session_store, cfg.session_secret) if cfg.session_store else None)
    broker = Broker(cfg)
    client_cert = cfg.client_tls.cert.read_bytes()
    policy_store = PolicyStore(cfg.policy) if cfg.policy else None
    app.state.sessions = sessions
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def cookie_args(max_age: int) -> dict[str, Any]:
        return {"max_age": max_age, "secure": True, "httponly": True, "samesite": "strict",
                "path": "/"}

    @app.middleware("http")
    async def headers(request: Request,
                      call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_FORM_BYTES:
            return HTMLResponse("request too large", status_code=413)
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    oidc = OidcClient(cfg.oidc) if cfg.oidc else None
    renewing: dict[str, asyncio.Lock] = {}

    @app.middleware("http")
    async def renew_tokens(request: Request,
                           call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        try:
            if oidc is not None:
                await renew_if_due(request.cookies.get(COOKIE))
            return await call_next(request)
        except SessionStoreError as exc:  # nobody is signed in while sessions cannot be read
            log.error("session_store_unavailable", reason=str(exc))
            return HTMLResponse(f"Sign-in is unavailable: {exc}. Try again shortly; the "
                                "console's operators have been told.", status_code=503)

    def current(request: Request) -> Session | None:
        return sessions.get(request.cookies.get(COOKIE))

    def due(session: Session) -> bool:
        return session.analyst.expires_at - dt.datetime.now(dt.UTC) <= REFRESH_MARGIN

    def refreshed(refresh_token: str, key: ClientKey | None) -> tuple[Tokens, Analyst]:
        assert oidc is not None
        tokens = oidc.refresh(refresh_token, proof_key=key)  # bound to the same key again
        analyst = cfg.auth.verify(tokens.access_token)
        check_key(analyst, key)
        return tokens, analyst

    async def renew_if_due(cookie: str | None) -> None:
        """Refresh the access token through the provider a minute before it expires, in a
        thread (a slow provider stalls no other request), once per session however many of
        its requests arrive meanwhile (a refresh token is single use). A refusal ends the
        session (the account may have been disabled at the provider)."""
        session = sessions.get(cookie)
        if session is None or not session.refresh_token or not due(session):
            return
        lock = renewing.setdefault(session.id, asyncio.Lock())
        try:
            async with lock:
                if sessions.get(cookie) is None or not due(session):
                    return  # renewed (or ended) by the request we waited for
                try:
                    tokens, analyst = await asyncio.to_thread(
                        refreshed, session.refresh_token, session.proof_key())
                except IdentityError as exc:
                    log.warning("refresh_refused", reason=str(exc))
                    sessions.end(session)
                    return
                sessions.renew(session, token=tokens.access_token, analyst=analyst,
                               refresh_token=tokens.refresh_token, id_token=tokens.id_token)
                log.info("token_refreshed", analyst=analyst.subject,
                         token_expires=analyst.expires_at.isoformat())
        finally:
            if not lock.locked():
                renewing.pop(session.id, None)

    def need(request: Request) -> Session:
        session = current(request)
        if session is None:
            if request.method == "GET":
                raise SignInNeeded()
            raise Refused(403, "You are not signed in (or your session has ended). Sign in "
                               "again.")
        return session

    def is_ig(session: Session) -> bool:
        return session.analyst.role in cfg.ig_roles

    def may_look_up(session: Session) -> bool:
        """Whether the session's role may look people up: a role some agreement grants
        lookups to (without a loaded bundle: any role but the IG roles). IG-only users are
        not offered the lookup form, its history or cases."""
        policy = ig.policy(policy_store)
        if policy is not None:
            return session.analyst.role in ig.lookup_roles(policy)
        return session.analyst.role not in cfg.ig_roles

    def need_lookups(request: Request) -> Session:
        session = need(request)
        if not may_look_up(session):
            raise Refused(403, f"Your role ({session.analyst.role}) is not given lookups by "
                               "any agreement: the console does not offer them to it.")
        return session

    def need_ig(request: Request) -> Session:
        session = need(request)
        if not is_ig(session):
            raise Refused(403, "This page is for information governance leads "
                               f"({', '.join(sorted(cfg.ig_roles))}).")
        return session

    async def form_of(request: Request, session: Session | None) -> dict[str, str]:
        form = await request.form()
        data = {k: v for k, v in form.items() if isinstance(v, str)}
        if session is not None and not session.csrf_ok(data.get("csrf_token")):
            log.warning("csrf_refused", path=request.url.path)
            raise Refused(403, "This form has expired or did not come from this console "
                               "(CSRF check failed). Reload the page and try again.")
        return data

    def render(request: Request, name: str, session: Session | None, status: int = 200,
               **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {
            "session": session, "is_ig": bool(session and is_ig(session)),
            "may_lookup": bool(session and may_look_up(session)),
            "csrf": session.csrf if session else "", "path": request.url.path,
            "policy_enabled": policy_store is not None, "audit_enabled": cfg.audit is not None,
            **context}, status_code=status)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> HTMLResponse:
        return render(request, "error.html", current(request), status=exc.status,
                      message=exc.message,
                      title="Refused" if exc.status in (401, 403) else "Problem")

    @app.exception_handler(SignInNeeded)
    async def sign_in_needed(request: Request, _exc: SignInNeeded) -> RedirectResponse:
        return RedirectResponse("/signin", status_code=303)

    @app.exception_handler(404)
    async def not_found(request: Request, _exc: Exception) -> HTMLResponse:
        return render(request, "error.html", current(request), status=404,
                      message="There is no such page.", title="Not found")

    # --- sign in and out --------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        return RedirectResponse("/lookup" if current(request) else "/signin", status_code=303)

    def signin_page(request: Request, error: str = "", status: int = 200) -> HTMLResponse:
        token = secrets.token_urlsafe(32)
        response = render(request, "signin.html", None, status=status, error=error,
                          signin_csrf=token, oidc_enabled=oidc is not None,
                          dev_token_signin=cfg.dev_token_signin)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, **cookie_args(600))
        return response

    @app.get("/signin", response_class=HTMLResponse)
    def signin_form(request: Request) -> Response:
        if current(request):
            return RedirectResponse("/lookup", status_code=303)
        return signin_page(request)

    def start_session(analyst: Analyst, token: str, *, refresh_token: str = "",
                      id_token: str = "",
                      proof_key: ClientKey | None = None) -> tuple[Session, str, int]:
        session, cookie = sessions.create(token, analyst, refresh_token=refresh_token,
                                          id_token=id_token, proof_key=proof_key)
        log.info("signed_in", analyst=analyst.subject, agency=analyst.agency,
                 role=analyst.role, session_expires=session.expires_at.isoformat(),
                 through="oidc" if id_token else "pasted_token",
                 key_bound=proof_key is not None)
        return session, cookie, int((session.expires_at - session.created_at).total_seconds())

    @app.get("/signin/oidc")
    async def signin_oidc(request: Request) -> Response:
        if oidc is None:
            raise Refused(404, "Sign-in through an identity provider is not configured.")
        try:
            state, url = await asyncio.to_thread(oidc.begin)
        except IdentityError as exc:
            log.warning("signin_refused", reason=str(exc))
            return signin_page(request, f"Sign-in is unavailable: {exc}", status=503)
        response = RedirectResponse(url, status_code=303)
        # Lax: the provider sends the browser back with a cross-site top-level GET.
        response.set_cookie(OIDC_STATE_COOKIE, state, max_age=600, secure=True,
                            httponly=True, samesite="lax", path="/signin/callback")
        return response

    @app.get("/signin/callback")
    async def signin_callback(request: Request) -> Response:
        if oidc is None:
            raise Refused(404, "Sign-in through an identity provider is not configured.")
        params = request.query_params
        if params.get("error"):
            log.warning("signin_refused", reason=f"provider: {params.get('error')}")
            return signin_page(request, "The identity provider did not sign you in "
                                        f"({params.get('error')}).", status=401)
        # oidc.bind_tokens: a key of this session's own, to which the provider binds its
        # tokens (DPoP) and with which the console signs each of its lookups
        key = ClientKey.generate() if oidc.cfg.bind_tokens else None
        try:
            tokens = await asyncio.to_thread(
                oidc.finish, state=params.get("state", ""), code=params.get("code", ""),
                browser_state=request.cookies.get(OIDC_STATE_COOKIE, ""), proof_key=key)
            analyst = await asyncio.to_thread(cfg.auth.verify, tokens.access_token)
            check_key(analyst, key)
        except IdentityError as exc:
            log.warning("signin_refused", reason=str(exc))
            return signin_page(request, f"Sign-in refused: {exc}", status=401)
        _, cookie, lifetime = start_session(analyst, tokens.access_token,
                                            refresh_token=tokens.refresh_token,
                                            id_token=tokens.id_token, proof_key=key)
        # A page of our own, not a redirect: the strict session cookie is then sent on the
        # way on (a redirect would still count as the provider's cross-site navigation).
        response = HTMLResponse('<!doctype html><meta http-equiv="refresh" content="0;url='
                                '/lookup"><title>Signed in</title><p><a href="/lookup">'
                                'Continue</a></p>')
        response.set_cookie(COOKIE, cookie, **cookie_args(lifetime))
        response.delete_cookie(OIDC_STATE_COOKIE, path="/signin/callback", secure=True,
                               httponly=True, samesite="lax")
        return response

    @app.post("/signin", response_class=HTMLResponse)
    async def signin(request: Request) -> Response:
        if not cfg.dev_token_signin:
            raise Refused(403, "Signing in with a pasted token is for development only and "
                               "is off here: use Sign in with your identity provider.")
        data = await form_of(request, None)
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not secrets.compare_digest(expected, data.get("csrf_token", "")):
            log.warning("csrf_refused", path="/signin")
            raise Refused(403, "The sign-in form has expired or did not come from this "
                               "console (CSRF check failed). Reload it and try again.")
        token = "".join(data.get("token", "").split())
        try:
            # An issuer's keys may need fetching (OpenID discovery): not on the event loop.
            analyst = (await asyncio.to_thread(cfg.auth.verify, token) if cfg.auth.remote
                       else cfg.auth.verify(token))
            cfg.auth.check_binding(analyst, client_cert)
            check_key(analyst, None)  # a pasted token comes without its proof key
            if cfg.auth.require_bound_proof:
                raise IdentityError("this console requires tokens bound to a proof key, "
                                    "which a pasted token cannot be: sign in through the "
                                    "identity provider")
        except IdentityError as exc:
            log.warning("signin_refused", reason=str(exc))
            return signin_page(request, f"Sign-in refused: {exc}", status=401)
        _, cookie, lifetime = start_session(analyst, token)
        response = RedirectResponse("/lookup", status_code=303)
        response.set_cookie(COOKIE, cookie, **cookie_args(lifetime))
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/", secure=True, httponly=True,
                               samesite="strict")
        return response

    @app.post("/signout")
    async def signout(request: Request) -> Response:
        session = need(request)
        await form_of(request, session)
        sessions.end(session)
        target = "/signin"
        if oidc is not None and session.refresh_token:
            try:
                await asyncio.to_thread(oidc.revoke, session.refresh_token)
            except IdentityError as exc:
                log.warning("refresh_token_not_revoked", reason=str(exc))
        if oidc is not None and session.id_token:
            try:  # RP-initiated logout: end the provider's session too
                target = await asyncio.to_thread(oidc.logout_url, session.id_token)
            except IdentityError as exc:
                log.warning("provider_logout_unavailable", reason=str(exc))
        log.info("signed_out", analyst=session.analyst.subject)
        response: Response = RedirectResponse(target, status_code=303)
        if target != "/signin":
            # Not a redirect: the CSP's form-action 'self' stops a form's redirect to the
            # provider, and rightly; a page of our own sends the browser on instead.
            link = html.escape(target, quote=True)
            response = HTMLResponse(f'<!doctype html><meta http-equiv="refresh" content="0;'
                                    f'url={link}"><title>Signing out</title><p><a href="'
                                    f'{link}">Sign out at your identity provider</a></p>')
        response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    # --- lookups ------------------------------------------------------------------------

    # with `cases:` in console.yaml, each lookup's result is kept there (encrypted, for the
    # retention) so that My lookups reopens it (audited) without asking again
    kept = cases_page.register(app, cfg=cfg, render=render, need=need_lookups,
                               form_of=form_of, lookup=broker.lookup, agents=broker.agents,
                               purposes=lambda: purposes(), refused=Refused)

    def purposes() -> dict[str, list[str]] | None:
        policy = ig.policy(policy_store)
        if policy is None:
            return None
        return {name: list(spec["stages"])
                for name, spec in policy.bundle.federation["purposes"].items()}

    def signed_out(session: Session, code: grpc.StatusCode) -> None:
        """The broker no longer accepts this token (revoked, or its key rotated): end the
        session rather than fail every page."""
        if code == grpc.StatusCode.UNAUTHENTICATED:
            sessions.end(session)
            raise Refused(401, GRPC_MESSAGES[code])

    def lookup_page(request: Request, session: Session, form: LookupForm, status: int = 200,
                    **context: Any) -> HTMLResponse:
        offered = purposes()
        return render(request, "lookup.html", session, status=status, form=form, labels=LABELS,
                      purposes=offered, stage_purposes=ig.stage_purposes(offered),
                      about=form.about(),
                      rag_hours=cfg.rag_hours, **context)

    @app.get("/lookup", response_class=HTMLResponse)
    def lookup_form(request: Request) -> HTMLResponse:
        session = need(request)
        return lookup_page(request, session, LookupForm.blank(),
                           not_offered=not may_look_up(session))

    @app.post("/lookup", response_class=HTMLResponse)
    async def lookup(request: Request) -> HTMLResponse:
        session = need_lookups(request)
        form = LookupForm.from_post(await form_of(request, session))
        lookup_request = validate(form, purposes())
        if lookup_request is None:
            return lookup_page(request, session, form, status=422)
        try:
            response = await _in_thread(broker.lookup, session, lookup_request)
        except UnsignedSession as exc:  # a bound token without its key: never sent unsigned
            log.warning("lookup_refused", reason=str(exc))
            sessions.end(session)
            raise Refused(401, f"The lookup was not sent: {exc}") from None
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            log.warning("lookup_failed", code=code.name)
            signed_out(session, code)
            message = GRPC_MESSAGES.get(code)
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                message = f"The broker refused the request: {exc.details()}"  # type: ignore[attr-defined]
            if code == grpc.StatusCode.FAILED_PRECONDITION:  # a stage approval missing/refused
                form.error("approval", f"{exc.details()}")  # type: ignore[attr-defined]
                return lookup_page(request, session, form, status=422)
            form.general.append(message or f"The lookup failed ({code.name.lower()}).")
            return lookup_page(request, session, form, status=502)
        view = lookup_view(response)
        urgency = form.values["urgency"].lower()
        asked = dt.datetime.now(dt.UTC)
        if response.HasField("asked_at"):
            asked = response.asked_at.ToDatetime(dt.UTC)
        timer = rag_timer(urgency, asked, cfg.rag_hours)
        sessions.record(session, LookupRecord(
            response.lookup_id, form.values["case"], form.values["purpose"],
            form.values["stage"], urgency, timer.asked_at, timer.due_at, summary(view)))
        log.info("lookup_answered", lookup_id=response.lookup_id, urgency=urgency,
                 due_at=timer.due_at.isoformat(), answers=view.counts)
        not_kept = ""
        if kept is not None:
            try:
                await _in_thread(kept.save, session.analyst.subject, form.values, response)
            except CaseStoreError as exc:
                log.error("lookup_not_kept", lookup_id=response.lookup_id, reason=str(exc))
                not_kept = str(exc)
        return lookup_page(request, session, form, result=view, timer=timer,
                           not_kept=not_kept)

    @app.get("/lookups", response_class=HTMLResponse)
    def history(request: Request) -> HTMLResponse:
        session = need_lookups(request)
        timers = [(r, rag_timer(r.urgency, r.asked_at, cfg.rag_hours))
                  for r in session.lookups]
        stored = kept.kept_of(session.analyst.subject) if kept is not None else []
        ids = {str(c.header.get("lookup_id")): c.case_id for c in stored}
        in_session = {r.lookup_id for r in session.lookups}
        earlier = [(c, rag_timer(str(c.header.get("urgency") or "amber"), c.stored_at,
                                 cfg.rag_hours))
                   for c in stored if c.header.get("lookup_id") not in in_session]
        return render(request, "history.html", session, timers=timers, kept_ids=ids,
                      keeping=kept is not None, earlier=earlier)

    @app.get("/lookups/{kept_id}", response_class=HTMLResponse)
    def reopen_lookup(request: Request, kept_id: str) -> HTMLResponse:
        """A kept result, from the store: the reopening is audited first, nothing is asked
        again."""
        session = need_lookups(request)
        if kept is None or not (len(kept_id) == 32 and
                                all(c in "0123456789abcdef" for c in kept_id)):
            raise Refused(404, "There is no such lookup kept.")
        try:
            stored, values, response = kept.reopen(kept_id, session.analyst)
        except CaseStoreError as exc:
            raise Refused(404, str(exc)) from None
        except AuditError:
            raise Refused(503, "This result cannot be shown: reopening it could not be "
                               "recorded in the audit trail.") from None
        log.info("lookup_reopened", lookup_id=response.lookup_id, by=session.analyst.subject)
        form = LookupForm.from_post(values)
        asked = (response.asked_at.ToDatetime(dt.UTC) if response.HasField("asked_at")
                 else stored.stored_at)
        timer = rag_timer(form.values["urgency"].lower() or "amber", asked, cfg.rag_hours)
        return lookup_page(request, session, form, result=lookup_view(response), timer=timer,
                           reopened=stored)

    @app.get("/agents", response_class=HTMLResponse)
    async def agents(request: Request) -> HTMLResponse:
        session = need(request)
        try:
            response = await _in_thread(broker.agents, session)
        except UnsignedSession as exc:
            sessions.end(session)
            raise Refused(401, f"The broker was not asked: {exc}") from None
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            signed_out(session, code)
            raise Refused(502, GRPC_MESSAGES.get(code, f"The broker refused: {code.name}")) \
                from None
        return render(request, "agents.html", session, agents=agents_view(response),
                      checked_at=dt.datetime.now(dt.UTC))

    # --- information governance ----------------------------------------------------------

    def loaded_policy() -> Any:
        policy = ig.policy(policy_store)
        if policy is None:
            reason = (policy_store.error if policy_store else None) or \
                "this console has no policy bundle configured (policy: in console.yaml)"
            raise Refused(503, f"No signed agreements bundle is loaded: {reason}")
        return policy

    @app.get("/agreements", response_class=HTMLResponse)
    def agreements(request: Request) -> HTMLResponse:
        session = need_ig(request)
        policy = loaded_policy()
        today = dt.datetime.now(dt.UTC).date()
        return render(request, "agreements.html", session, policy=policy, today=today,
                      rows=ig.agreement_rows(policy, today))

    @app.get("/explain", response_class=HTMLResponse)
    def explain(request: Request, purpose: str = "", stage: str = "", requester: str = "",
                role: str = "analyst", owner: str = "") -> HTMLResponse:
        session = need_ig(request)
        policy = loaded_policy()
        choices = ig.choices(policy)
        errors: dict[str, str] = {}
        tables: list[ig.OwnerExplanation] = []
        requester = requester or session.analyst.agency
        if purpose or stage:
            errors = ig.check_choice(choices, purpose, stage, requester, role, owner)
            if not errors:
                tables = ig.explain_all(policy, purpose, stage, requester, role, owner,
                                        dt.datetime.now(dt.UTC).date())
        return render(request, "explain.html", session, choices=choices, errors=errors,
                      tables=tables, stage_purposes=ig.stage_purposes(
                          {p: v["stages"] for p, v in choices.purposes.items()}),
                      chosen={"purpose": purpose, "stage": stage,
                                             "requester": requester, "role": role,
                                             "owner": owner})

    @app.get("/audit", response_class=HTMLResponse)
    def audit_form(request: Request) -> HTMLResponse:
        session = need_ig(request)
        return render(request, "audit.html", session, values={}, found=None, error="")

    @app.post("/audit", response_class=HTMLResponse)
    async def audit_search(request: Request) -> HTMLResponse:
        session = need_ig(request)
        data = await form_of(request, session)
        if cfg.audit is None:
            raise Refused(503, "This console has no audit store configured (audit: in "
                               "console.yaml).")
        fields = ("nhs", "upn", "pnc", "name", "dob", "case", "requester", "since", "until")
        values = {k: data.get(k, "").strip() for k in fields}
        found: list[Found] | None = None
        error = ""
        try:
            criteria = search_criteria(
                nhs_number=values["nhs"], upn=values["upn"], pnc_id=values["pnc"],
                names=[values["name"]] if values["name"] else [],
                date_of_birth=values["dob"], case_reference=values["case"],
                requester=values["requester"], since=values["since"], until=values["until"])
            if not (criteria.subject or criteria.case_reference or criteria.requester):
                raise ValidationError("say what to search for: an identifier, a name with the "
                                      "date of birth, a case reference or an analyst")
            audit = cfg.audit
            found = await _in_thread(_search, audit, criteria)
            log.info("audit_searched", by=session.analyst.subject, hits=len(found),
                     criteria=sorted(criteria.describe()))
        except (ValidationError, MashError) as exc:
            error = str(exc)
        return render(request, "audit.html", session, values=values, found=found,
                      error=error, status=422 if error else 200)

    report_page.register(app, cfg=cfg, render=render, need=need, refused=Refused)
    return app


def _search(audit: Any, criteria: Any) -> list[Found]:
    with audit.open_store() as store:
        return search(store, criteria, audit.hasher, limit=200)


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
