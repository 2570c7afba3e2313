"""Signing in and out: through the identity provider (OpenID Connect, with the tokens bound
to a key of the session's own where configured) or, in development only, by pasting a
token; signing out ends the session here and, where it can, at the provider."""

from __future__ import annotations

import asyncio
import html
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mash.console import csrf
from mash.console.oidc import OidcClient
from mash.console.pages import Pages, Refused
from mash.console.sessions import COOKIE, LOGIN_CSRF_COOKIE, Session, check_key
from mash.errors import IdentityError
from mash.identity.dpop import ClientKey
from mash.identity.tokens import Analyst
from mash.logs import get_logger

log = get_logger(__name__)
OIDC_STATE_COOKIE = "mash_oidc_state"


def cookie_args(max_age: int) -> dict[str, Any]:
    return {"max_age": max_age, "secure": True, "httponly": True, "samesite": "strict",
            "path": "/"}


def add_signin_routes(app: FastAPI, *, pages: Pages, oidc: OidcClient | None) -> None:
    cfg = pages.cfg
    sessions = pages.sessions
    client_cert = cfg.client_tls.cert.read_bytes()

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        return RedirectResponse("/lookup" if pages.current(request) else "/signin",
                                status_code=303)

    def signin_page(request: Request, error: str = "", status: int = 200) -> HTMLResponse:
        token = csrf.new_signin_token()
        response = pages.render(request, "signin.html", None, status=status, error=error,
                                signin_csrf=token, oidc_enabled=oidc is not None,
                                dev_token_signin=cfg.dev_token_signin)
        response.set_cookie(LOGIN_CSRF_COOKIE, token,
                            **cookie_args(csrf.SIGNIN_TOKEN_SECONDS))
        return response

    @app.get("/signin", response_class=HTMLResponse)
    def signin_form(request: Request) -> Response:
        if pages.current(request):
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

    def provider() -> OidcClient:
        if oidc is None:
            raise Refused(404, "Sign-in through an identity provider is not configured.")
        return oidc

    @app.get("/signin/oidc")
    async def signin_oidc(request: Request) -> Response:
        oidc = provider()
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
        oidc = provider()
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
        data = await csrf.checked_form(request, None)
        csrf.check_signin_token(request, data)
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
        session = pages.need(request)
        await csrf.checked_form(request, session)
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
