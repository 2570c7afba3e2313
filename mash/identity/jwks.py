"""An identity provider's signing keys, found by OpenID discovery and fetched as a JWKS.

PyJWT's PyJWKClient does the fetching: keys are looked up by the token's `kid`, the key set
is cached for `cache_seconds`, and a `kid` not in the cached set makes it fetch the set again
(so the provider can rotate its keys without a restart here; at most once every
`jwks_refetch_cooldown_seconds`, so that made-up kids cannot make us hammer the provider).
Nothing is served stale: once the cache's life is over and the provider cannot be reached,
every token from that issuer is refused, saying why (fail closed).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import jwt
from jwt import PyJWK, PyJWKClient

from mash.errors import IdentityError

DISCOVERY_PATH = "/.well-known/openid-configuration"
MAX_DOCUMENT_BYTES = 1 << 20


class RemoteKeys:
    """The keys of one issuer, from its discovery document (or a configured jwks_uri)."""

    def __init__(self, issuer: str, *, jwks_uri: str = "", cache_seconds: float = 300.0,
                 cooldown_seconds: float = 30.0, timeout_seconds: float = 5.0) -> None:
        self.issuer = issuer
        self._jwks_uri = jwks_uri
        self._cache_seconds = cache_seconds
        self._cooldown = cooldown_seconds
        self._timeout = timeout_seconds
        self._client: PyJWKClient | None = None
        self._lock = threading.Lock()

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + DISCOVERY_PATH

    def _discover(self) -> str:
        url = self.discovery_url
        try:
            with urllib.request.urlopen(url, timeout=self._timeout) as reply:  # noqa: S310
                document = json.loads(reply.read(MAX_DOCUMENT_BYTES))
        except (OSError, urllib.error.URLError) as exc:
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
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise IdentityError(f"the discovery document at {url} has no jwks_uri")
        return jwks_uri

    def _jwk_client(self) -> PyJWKClient:
        with self._lock:
            if self._client is None:
                uri = self._jwks_uri or self._discover()
                self._client = PyJWKClient(uri, cache_keys=False, cache_jwk_set=True,
                                           lifespan=self._cache_seconds,
                                           cooldown_duration=self._cooldown,
                                           timeout=self._timeout)
            return self._client

    def key_for(self, token: str) -> PyJWK:
        """The published key that signed `token` (by its kid), or IdentityError saying why
        there is none."""
        client = self._jwk_client()
        try:
            return client.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError:
            raise IdentityError(
                f"the signing keys of {self.issuer} cannot be fetched and the cached ones are "
                f"older than {self._cache_seconds:g} s: refusing its tokens until the "
                "provider can be reached") from None
        except jwt.PyJWKClientError as exc:
            if "Unable to find a signing key" in str(exc):
                raise IdentityError(
                    f"the token's signing key (kid) is not among {self.issuer}'s published "
                    f"keys (fetched again on an unknown kid, at most every {self._cooldown:g} "
                    "s): a forged token, or one from a key the provider has withdrawn") \
                    from None
            raise IdentityError(f"the signing keys of {self.issuer} are unusable ({exc})") \
                from None
        except jwt.DecodeError:
            raise IdentityError("analyst token is malformed") from None
