"""Console sign-in through the agency's OpenID provider: authorization code flow with PKCE
and a confidential client (client_secret_basic).

`begin()` makes the state, nonce and PKCE verifier (kept server-side, keyed by state, for
ten minutes) and the authorization URL; `finish()` checks the state, exchanges the code,
verifies the ID token (signature by the provider's JWKS, issuer, audience = our client id,
nonce) and returns the tokens. The access token is what the broker and agents verify: the
console verifies it with the same TokenVerifier (so the same claim mapping gives agency,
role and team). Sign-out revokes the refresh token and ends the provider's session
(RP-initiated logout). With a `proof_key` (a per-session ClientKey), `finish` and `refresh`
ask for a DPoP-bound access token (RFC 9449: cnf.jkt), whose lookups the console must then
sign with that key (mash/identity/request_binding.py).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from mash.errors import IdentityError
from mash.identity.dpop import ClientKey
from mash.identity.jwks import RemoteKeys
from mash.identity.request_binding import bound_thumbprint

PENDING_SECONDS = 600.0
MAX_PENDING = 10_000


@dataclass(frozen=True)
class OidcConfig:
    """The provider and this client, as the console runs with them (made from console.yaml's
    `oidc:` by mash.console.config.load, which reads the client secret)."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    post_logout_redirect_uri: str
    scope: str
    # Ask for access tokens bound to a per-session proof key (DPoP, cnf.jkt) and sign every
    # lookup with it: a token copied out of the console is then of no use without the key.
    bind_tokens: bool = False


@dataclass(frozen=True)
class Pending:
    state: str
    nonce: str
    code_verifier: str
    started: float


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    id_token: str


class OidcClient:
    def __init__(self, cfg: OidcConfig, *, timeout: float = 10.0) -> None:
        self.cfg = cfg
        self._timeout = timeout
        self._keys = RemoteKeys(cfg.issuer, timeout_seconds=timeout)
        self._document: dict[str, Any] | None = None
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()

    def _endpoint(self, name: str) -> str:
        if self._document is None:
            url = self._keys.discovery_url
            try:
                document = httpx.get(url, timeout=self._timeout).raise_for_status().json()
            except (httpx.HTTPError, ValueError) as exc:
                raise IdentityError(f"cannot reach the identity provider's discovery document "
                                    f"{url} ({exc}): check oidc.issuer") from None
            if document.get("issuer") != self.cfg.issuer:
                raise IdentityError(f"{url} names issuer {document.get('issuer')!r}, not "
                                    f"{self.cfg.issuer!r}: set oidc.issuer to exactly that")
            self._document = document
        value = self._document.get(name)
        if not isinstance(value, str):
            raise IdentityError(f"the identity provider does not publish {name}")
        return value

    def begin(self) -> tuple[str, str]:
        """(state, the URL to send the browser to)."""
        pending = Pending(secrets.token_urlsafe(32), secrets.token_urlsafe(32),
                          secrets.token_urlsafe(48), time.monotonic())
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(pending.code_verifier.encode()).digest()).rstrip(b"=").decode()
        url = self._endpoint("authorization_endpoint") + "?" + urlencode({
            "response_type": "code", "client_id": self.cfg.client_id,
            "redirect_uri": self.cfg.redirect_uri, "scope": self.cfg.scope,
            "state": pending.state, "nonce": pending.nonce, "code_challenge": challenge,
            "code_challenge_method": "S256",
            # oidc-provider (and the spec) issue a refresh token for offline_access only
            # when consent is prompted for.
            "prompt": "consent"})
        with self._lock:
            now = time.monotonic()
            for state in [s for s, p in self._pending.items()
                          if now - p.started > PENDING_SECONDS]:
                del self._pending[state]
            if len(self._pending) >= MAX_PENDING:
                raise IdentityError("too many sign-ins in progress: try again in a minute")
            self._pending[pending.state] = pending
        return pending.state, url

    def _token_call(self, data: dict[str, str],
                    proof_key: ClientKey | None = None) -> dict[str, Any]:
        url = self._endpoint("token_endpoint")
        headers = {"DPoP": proof_key.proof(method="POST", target=url)} if proof_key else None
        try:
            reply = httpx.post(url, data=data, headers=headers,
                               auth=(self.cfg.client_id, self.cfg.client_secret),
                               timeout=self._timeout)
            body = reply.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise IdentityError(f"the identity provider's token endpoint did not answer "
                                f"({exc})") from None
        if reply.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            detail = body.get("error_description") or body.get("error") if isinstance(
                body, dict) else reply.status_code
            raise IdentityError(f"the identity provider refused the sign-in ({detail})")
        if proof_key is not None and bound_thumbprint(str(body["access_token"])) != \
                proof_key.thumbprint:
            raise IdentityError("the identity provider did not bind the access token to the "
                                "console's proof key (no cnf.jkt for it): enable DPoP for "
                                "the console's client at the provider")
        return body

    def finish(self, *, state: str, browser_state: str, code: str,
               proof_key: ClientKey | None = None) -> Tokens:
        """The tokens for this callback (bound to `proof_key` when given), or IdentityError
        saying what failed."""
        if not state or not secrets.compare_digest(state, browser_state or ""):
            raise IdentityError("the sign-in did not start in this browser (state mismatch): "
                                "sign in again")
        with self._lock:
            pending = self._pending.pop(state, None)
        if pending is None or time.monotonic() - pending.started > PENDING_SECONDS:
            raise IdentityError("the sign-in took too long or was already used: sign in again")
        body = self._token_call({"grant_type": "authorization_code", "code": code,
                                 "redirect_uri": self.cfg.redirect_uri,
                                 "code_verifier": pending.code_verifier}, proof_key)
        id_token = str(body.get("id_token", ""))
        self._check_id_token(id_token, nonce=pending.nonce)
        return Tokens(str(body["access_token"]), str(body.get("refresh_token", "")), id_token)

    def _check_id_token(self, id_token: str, *, nonce: str | None) -> dict[str, Any]:
        if not id_token:
            raise IdentityError("the identity provider sent no ID token (is openid in scope?)")
        key = self._keys.key_for(id_token)
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token, key, algorithms=[str(jwt.get_unverified_header(id_token)["alg"])],
                audience=self.cfg.client_id, issuer=self.cfg.issuer, leeway=30,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        except jwt.PyJWTError as exc:
            raise IdentityError(f"the ID token is not valid ({exc})") from None
        if nonce is not None and not secrets.compare_digest(str(claims.get("nonce", "")),
                                                            nonce):
            raise IdentityError("the ID token's nonce is not this sign-in's: a replayed "
                                "response; sign in again")
        return claims

    def refresh(self, refresh_token: str, *, proof_key: ClientKey | None = None) -> Tokens:
        """New tokens; a key-bound session's are bound to the same `proof_key` again."""
        body = self._token_call({"grant_type": "refresh_token",
                                 "refresh_token": refresh_token}, proof_key)
        id_token = str(body.get("id_token", ""))
        if id_token:
            self._check_id_token(id_token, nonce=None)
        return Tokens(str(body["access_token"]), str(body.get("refresh_token", refresh_token)),
                      id_token)

    def revoke(self, refresh_token: str) -> None:
        """Revoke the refresh token at the provider (best effort is not enough: raise)."""
        try:
            reply = httpx.post(self._endpoint("revocation_endpoint"),
                               data={"token": refresh_token,
                                     "token_type_hint": "refresh_token"},
                               auth=(self.cfg.client_id, self.cfg.client_secret),
                               timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise IdentityError(f"could not revoke the refresh token ({exc})") from None
        if reply.status_code != 200:
            raise IdentityError(f"the provider refused to revoke the refresh token "
                                f"({reply.status_code})")

    def logout_url(self, id_token: str) -> str:
        params = {"client_id": self.cfg.client_id, "id_token_hint": id_token}
        if self.cfg.post_logout_redirect_uri:
            params["post_logout_redirect_uri"] = self.cfg.post_logout_redirect_uri
        return self._endpoint("end_session_endpoint") + "?" + urlencode(params)
