"""Cross-site request forgery checks: every POST of a signed-in page carries the session's
token (Session.csrf, compared by Session.csrf_ok); the sign-in form, before any session,
carries a token that must match its short-lived cookie."""

from __future__ import annotations

import secrets

from fastapi import Request

from mash.console.pages import Refused
from mash.console.sessions import LOGIN_CSRF_COOKIE, Session
from mash.logs import get_logger

log = get_logger(__name__)
SIGNIN_TOKEN_SECONDS = 600  # how long a sign-in form may stand open


async def checked_form(request: Request, session: Session | None) -> dict[str, str]:
    """The posted form's text fields, refused (403) unless it carries the session's CSRF
    token; with no session (the sign-in form) see `check_signin_token`."""
    form = await request.form()
    data = {k: v for k, v in form.items() if isinstance(v, str)}
    if session is not None and not session.csrf_ok(data.get("csrf_token")):
        log.warning("csrf_refused", path=request.url.path)
        raise Refused(403, "This form has expired or did not come from this console "
                           "(CSRF check failed). Reload the page and try again.")
    return data


def new_signin_token() -> str:
    """A token for a sign-in form, set as LOGIN_CSRF_COOKIE beside it."""
    return secrets.token_urlsafe(32)


def check_signin_token(request: Request, data: dict[str, str]) -> None:
    """Refuse (403) a sign-in form whose token is not its cookie's."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, data.get("csrf_token", "")):
        log.warning("csrf_refused", path="/signin")
        raise Refused(403, "The sign-in form has expired or did not come from this "
                           "console (CSRF check failed). Reload it and try again.")
