"""An identity provider's signing keys, found by OpenID discovery and fetched as a JWKS.

Keys are looked up by the token's `kid` in a cached key set. The set is fetched again when
its life (`cache_seconds`) is over or when a token names a `kid` the set lacks (so the
provider can rotate its keys without a restart here). Every fetch -- discovery and JWKS,
successful or not -- starts a cooldown (`cooldown_seconds`): until it is over no other fetch
is tried, so neither made-up kids nor an unreachable provider make us hammer it with one
request per lookup. Nothing is served stale: once the cache's life is over and the provider
cannot be reached, every token from that issuer is refused, saying why (fail closed).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet

from mash.errors import IdentityError

DISCOVERY_PATH = "/.well-known/openid-configuration"
MAX_DOCUMENT_BYTES = 1 << 20
DEFAULT_COOLDOWN_SECONDS = 30.0
FETCH_ERRORS = (OSError, urllib.error.URLError, http.client.HTTPException)


@dataclass(frozen=True)
class _KeySet:
    keys: dict[str, PyJWK]
    fetched_at: float  # monotonic


class RemoteKeys:
    """The keys of one issuer, from its discovery document (or a configured jwks_uri)."""

    @staticmethod
    def cooldown_problem(issuer: str, cooldown_seconds: float, cache_seconds: float) -> str:
        return (f"{issuer}: the JWKS refetch cooldown ({cooldown_seconds:g} s) is longer than "
                f"the key cache's life ({cache_seconds:g} s): keys would lapse before they "
                "could be fetched again; shorten jwks_refetch_cooldown_seconds")

    def __init__(self, issuer: str, *, jwks_uri: str = "", cache_seconds: float = 300.0,
                 cooldown_seconds: float | None = None, timeout_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if cooldown_seconds is None:
            cooldown_seconds = min(DEFAULT_COOLDOWN_SECONDS, cache_seconds)
        if cooldown_seconds > cache_seconds:
            raise IdentityError(self.cooldown_problem(issuer, cooldown_seconds, cache_seconds))
        self.issuer = issuer
        self._jwks_uri = jwks_uri
        self._cache_seconds = cache_seconds
        self._cooldown = cooldown_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._set: _KeySet | None = None
        self._tried_at: float | None = None
        self._failure = ""  # why the last fetch failed ("" when it did not)
        self._lock = threading.Lock()
        self.fetches = 0  # fetch attempts (discovery + JWKS count as one), for metrics/tests

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + DISCOVERY_PATH

    @property
    def cooldown_seconds(self) -> float:
        return self._cooldown

    def _get_json(self, url: str) -> Any:
        with urllib.request.urlopen(url, timeout=self._timeout) as reply:  # noqa: S310
            return json.loads(reply.read(MAX_DOCUMENT_BYTES))

    def _discover(self) -> str:
        url = self.discovery_url
        try:
            document = self._get_json(url)
        except FETCH_ERRORS as exc:
            raise IdentityError(
                f"cannot reach the identity provider's discovery document {url} ({exc}): "
                "check the issuer URL and that the provider is up") from None
        except ValueError:
            raise IdentityError(f"the discovery document at {url} is not JSON: check the "
                                "issuer URL") from None
        if not isinstance(document, dict) or document.get("issuer") != self.issuer:
            found = document.get("issuer") if isinstance(document, dict) else None
            raise IdentityError(
                f"the discovery document at {url} names issuer {found!r}, not "
                f"{self.issuer!r}: set the issuer to exactly what the provider says")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise IdentityError(f"the discovery document at {url} has no usable jwks_uri")
        return jwks_uri

    def _fetch(self) -> dict[str, PyJWK]:
        if not self._jwks_uri:
            self._jwks_uri = self._discover()
        try:
            document = self._get_json(self._jwks_uri)
            keys = PyJWKSet.from_dict(document).keys if isinstance(document, dict) else None
        except FETCH_ERRORS as exc:
            raise IdentityError(f"cannot fetch the JWKS at {self._jwks_uri} ({exc})") from None
        except (ValueError, jwt.PyJWTError) as exc:
            raise IdentityError(f"the JWKS at {self._jwks_uri} is unusable ({exc})") from None
        signing = {k.key_id: k for k in keys or [] if k.key_id and k.public_key_use in
                   ("sig", None)}
        if not signing:
            raise IdentityError(f"the JWKS at {self._jwks_uri} has no signing keys with a kid")
        return signing

    def _fresh(self, now: float) -> _KeySet | None:
        current = self._set
        if current is not None and now - current.fetched_at < self._cache_seconds:
            return current
        return None

    def _refresh_if_allowed(self, now: float) -> None:
        """Fetch the key set unless a fetch was tried within the cooldown (call locked)."""
        if self._tried_at is not None and now - self._tried_at < self._cooldown:
            return
        self._tried_at = now
        self.fetches += 1
        try:
            keys = self._fetch()
        except IdentityError as exc:
            self._failure = str(exc)
            return
        self._failure = ""
        self._set = _KeySet(keys, self._clock())

    def key_for(self, token: str) -> PyJWK:
        """The published key that signed `token` (by its kid), or IdentityError saying why
        there is none."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise IdentityError("analyst token is malformed") from None
        if not isinstance(kid, str) or not kid:
            raise IdentityError(f"the token names no signing key (kid): {self.issuer} "
                                "publishes its keys by kid")
        fresh = self._fresh(self._clock())
        if fresh is not None and kid in fresh.keys:
            return fresh.keys[kid]  # the common case: no lock, no I/O
        with self._lock:
            fresh = self._fresh(self._clock())  # another thread may just have fetched
            if fresh is None or kid not in fresh.keys:
                self._refresh_if_allowed(self._clock())
                fresh = self._fresh(self._clock())
            if fresh is not None and kid in fresh.keys:
                return fresh.keys[kid]
            raise self._refusal(fresh)

    def _refusal(self, fresh: _KeySet | None) -> IdentityError:
        retry = f"tried again at most every {self._cooldown:g} s"
        if fresh is not None:
            why = f"; the provider could not be asked again: {self._failure}" \
                if self._failure else ""
            return IdentityError(
                f"the token's signing key (kid) is not among {self.issuer}'s published keys "
                f"(fetched again on an unknown kid, at most every {self._cooldown:g} s{why}): "
                "a forged token, or one from a key the provider has withdrawn")
        if self._set is None:  # never had keys: the failure itself is the reason
            return IdentityError(f"{self._failure or 'no keys fetched yet'} ({retry})")
        return IdentityError(
            f"the signing keys of {self.issuer} cannot be fetched and the cached ones are "
            f"older than {self._cache_seconds:g} s: refusing its tokens until the provider "
            f"can be reached ({self._failure or 'waiting for the next try'}; {retry})")
