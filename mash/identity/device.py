"""The OAuth device authorization grant (RFC 8628) for `mash login`, and token refresh.

The CLI asks the identity provider for a device code, shows the analyst where to enter the
user code, and polls the token endpoint until they have signed in there. The tokens are kept
in the analyst's token file (the access token alone on its first line, as `mash lookup`
reads it; the refresh token in a sidecar `.refresh` file, mode 0600). With a client
certificate (`mash login --bind-cert`) the device and token endpoints are the provider's
mTLS aliases (RFC 8705 section 5), so the tokens are bound to the certificate.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt

from mash.errors import IdentityError
from mash.files import write_atomic
from mash.identity.cert_binding import CertKey
from mash.identity.dpop import ClientKey

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SCOPE = "openid offline_access lookup"


@dataclass(frozen=True)
class ClientCertificate:
    """The analyst's mTLS client certificate and key, shown to the identity provider's mTLS
    endpoints so that it binds the tokens to the certificate (RFC 8705 cnf.x5t#S256); `ca`
    verifies the provider's HTTPS certificate (None: the system's CAs)."""

    cert: Path
    key: Path
    ca: Path | None = None

    def ssl_context(self) -> ssl.SSLContext:
        try:
            context = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
            context.load_cert_chain(str(self.cert), str(self.key))
        except (OSError, ssl.SSLError) as exc:
            raise IdentityError(f"cannot use the client certificate {self.cert} and key "
                                f"{self.key} (or the CA {self.ca}): {exc}") from None
        return context

    @property
    def thumbprint(self) -> str:
        return CertKey.from_files(self.cert, self.key).thumbprint

    def state(self) -> dict[str, str]:
        return {"cert": str(self.cert.resolve()), "key": str(self.key.resolve()),
                **({"ca": str(self.ca.resolve())} if self.ca else {})}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ClientCertificate:
        return cls(Path(state["cert"]), Path(state["key"]),
                   Path(state["ca"]) if state.get("ca") else None)


@dataclass(frozen=True)
class Endpoints:
    issuer: str
    device: str
    token: str
    # RFC 8705 section 5: the endpoints where a client certificate is asked for (and tokens
    # are bound to it); empty when the provider publishes none
    mtls_aliases: tuple[tuple[str, str], ...] = ()
    binds_certificates: bool = False

    def over_mtls(self) -> Endpoints:
        """The device and token endpoints at the provider's mTLS aliases, or IdentityError
        when it publishes none (it cannot bind tokens to a certificate)."""
        aliases = dict(self.mtls_aliases)
        token = aliases.get("token_endpoint", "")
        if not self.binds_certificates or not token.startswith("https://"):
            raise IdentityError(f"{self.issuer} does not issue certificate-bound tokens (its "
                                "discovery document has no tls_client_certificate_bound_"
                                "access_tokens or no mtls_endpoint_aliases.token_endpoint): "
                                "ask its administrators to enable RFC 8705, or use --bind-key")
        return Endpoints(self.issuer, aliases.get("device_authorization_endpoint", self.device),
                         token, self.mtls_aliases, True)


def discover(issuer: str, *, timeout: float = 10.0) -> Endpoints:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        document = httpx.get(url, timeout=timeout).raise_for_status().json()
    except (httpx.HTTPError, ValueError) as exc:
        raise IdentityError(f"cannot read the identity provider's discovery document {url} "
                            f"({exc}): check --issuer") from None
    if document.get("issuer") != issuer:
        raise IdentityError(f"{url} names issuer {document.get('issuer')!r}, not {issuer!r}: "
                            "pass --issuer exactly as the provider names itself")
    device = document.get("device_authorization_endpoint")
    if not isinstance(device, str):
        raise IdentityError(f"{issuer} does not offer the device authorization grant: ask its "
                            "administrators to enable it for the MASH CLI client")
    aliases = document.get("mtls_endpoint_aliases")
    return Endpoints(issuer, device, str(document["token_endpoint"]),
                     tuple((str(k), str(v)) for k, v in aliases.items()
                           if isinstance(v, str)) if isinstance(aliases, dict) else (),
                     document.get("tls_client_certificate_bound_access_tokens") is True)


def _post(url: str, data: dict[str, str], timeout: float,
          proof_key: ClientKey | None = None,
          tls: ClientCertificate | None = None) -> tuple[int, dict[str, Any]]:
    # With a proof key, the token is bound to it (RFC 9449: the provider puts cnf.jkt in it);
    # with a client certificate, to the certificate (RFC 8705: cnf.x5t#S256).
    headers = {"DPoP": proof_key.proof(method="POST", target=url)} if proof_key else None
    verify: ssl.SSLContext | bool = tls.ssl_context() if tls is not None else True
    try:
        reply = httpx.post(url, data=data, timeout=timeout, headers=headers, verify=verify)
        body = reply.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise IdentityError(f"the identity provider at {url} did not answer ({exc})") \
            from None
    return reply.status_code, body if isinstance(body, dict) else {}


@dataclass(frozen=True)
class DeviceCode:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    interval: float
    expires_in: float


def start(endpoints: Endpoints, client_id: str, *, scope: str = SCOPE,
          timeout: float = 10.0, tls: ClientCertificate | None = None) -> DeviceCode:
    status, body = _post(endpoints.device, {"client_id": client_id, "scope": scope}, timeout,
                         tls=tls)
    if status != 200 or "device_code" not in body:
        raise IdentityError(f"the identity provider refused the device sign-in: "
                            f"{body.get('error_description') or body.get('error') or status} "
                            "(check --client-id)")
    return DeviceCode(str(body["device_code"]), str(body["user_code"]),
                      str(body["verification_uri"]),
                      str(body.get("verification_uri_complete") or body["verification_uri"]),
                      float(body.get("interval", 5)), float(body.get("expires_in", 300)))


def poll(endpoints: Endpoints, client_id: str, code: DeviceCode, *,
         sleep: Callable[[float], None] = time.sleep, timeout: float = 10.0,
         proof_key: ClientKey | None = None,
         tls: ClientCertificate | None = None) -> dict[str, Any]:
    """Wait for the analyst to approve; the token response, or IdentityError. With
    `proof_key` the token is bound to that key (mash/identity/dpop.py); with `tls` (and
    `endpoints.over_mtls()`) to that client certificate (mash/identity/cert_binding.py)."""
    interval = code.interval
    deadline = time.monotonic() + code.expires_in
    while time.monotonic() < deadline:
        status, body = _post(endpoints.token, {"grant_type": DEVICE_GRANT,
                                               "device_code": code.device_code,
                                               "client_id": client_id}, timeout,
                             proof_key, tls)
        if status == 200 and "access_token" in body:
            if tls is not None:
                check_certificate_bound(body, tls)
            return body
        error = body.get("error")
        if error == "authorization_pending":
            sleep(interval)
        elif error == "slow_down":
            interval += 5
            sleep(interval)
        elif error == "access_denied":
            raise IdentityError("the sign-in was declined at the identity provider")
        elif error == "expired_token":
            break
        else:
            raise IdentityError(f"the identity provider refused the sign-in: "
                                f"{body.get('error_description') or error or status}")
    raise IdentityError("the device code expired before the sign-in finished: run mash "
                        "login again")


def refresh(endpoints: Endpoints, client_id: str, refresh_token: str, *,
            timeout: float = 10.0, proof_key: ClientKey | None = None,
            tls: ClientCertificate | None = None) -> dict[str, Any]:
    """New tokens; a key-bound sign-in must prove the same key (`proof_key`) again, a
    certificate-bound one present the same certificate (`tls`, at the mTLS token endpoint)."""
    status, body = _post(endpoints.token, {"grant_type": "refresh_token",
                                           "refresh_token": refresh_token,
                                           "client_id": client_id}, timeout, proof_key, tls)
    if status != 200 or "access_token" not in body:
        raise IdentityError("the identity provider would not refresh the sign-in "
                            f"({body.get('error_description') or body.get('error') or status})"
                            ": run mash login again")
    if tls is not None:
        check_certificate_bound(body, tls)
    return body


def check_certificate_bound(tokens: dict[str, Any], tls: ClientCertificate) -> None:
    """IdentityError unless the access token is bound to `tls`'s certificate (cnf.x5t#S256):
    a provider that did not bind it gave a bearer token where one bound was asked for."""
    claims: dict[str, Any] = {}
    with contextlib.suppress(jwt.PyJWTError):
        claims = jwt.decode(str(tokens["access_token"]), options={"verify_signature": False})
    cnf = claims.get("cnf")
    if not isinstance(cnf, dict) or cnf.get("x5t#S256") != tls.thumbprint:
        raise IdentityError("the identity provider did not bind the token to your client "
                            "certificate (no cnf.x5t#S256 for it): register the client with "
                            "tls_client_certificate_bound_access_tokens, or check --client-id")


def refresh_path(token_file: Path) -> Path:
    return token_file.with_name(token_file.name + ".refresh")


def proof_key_path(token_file: Path) -> Path:
    return token_file.with_name(token_file.name + ".key")


def load_proof_key(token_file: Path) -> ClientKey | None:
    """The proof key `mash login --bind-key` left beside the token file, if any."""
    path = proof_key_path(token_file)
    if not path.exists():
        return None
    try:
        return ClientKey.from_pem(path.read_bytes())
    except (OSError, IdentityError) as exc:
        raise IdentityError(f"{path} is unreadable ({exc}): run mash login again") from None


def save(token_file: Path, tokens: dict[str, Any], *, issuer: str, client_id: str,
         proof_key: ClientKey | None = None, tls: ClientCertificate | None = None) -> None:
    """The access token to `token_file`; the refresh token and where it came from beside it,
    and the proof key the token is bound to (private files)."""
    if proof_key is not None:
        write_atomic(proof_key_path(token_file), proof_key.to_pem(), private=True)
    write_atomic(token_file, (str(tokens["access_token"]) + "\n").encode(), private=True)
    if tokens.get("refresh_token"):
        state: dict[str, Any] = {"issuer": issuer, "client_id": client_id,
                                 "refresh_token": tokens["refresh_token"]}
        if tls is not None:  # refreshed at the mTLS token endpoint, with this certificate
            state["mtls"] = tls.state()
        write_atomic(refresh_path(token_file), json.dumps(state).encode(), private=True)


def expires_soon(access_token: str, *, margin: float = 30.0) -> bool:
    """True when the token has expired or will within `margin` seconds (or is unreadable)."""
    try:
        exp = jwt.decode(access_token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return True
    return not isinstance(exp, int | float) or exp - time.time() < margin


def fresh_token(token_file: Path) -> str:
    """The token in `token_file`, refreshed through the identity provider first when it has
    expired and `mash login` left a refresh token beside it."""
    token = token_file.read_text().strip()
    side = refresh_path(token_file)
    if not expires_soon(token) or not side.exists():
        return token
    try:
        state = json.loads(side.read_text())
        issuer, client_id = str(state["issuer"]), str(state["client_id"])
        refresh_token = str(state["refresh_token"])
        tls = ClientCertificate.from_state(state["mtls"]) if state.get("mtls") else None
    except (OSError, ValueError, KeyError, TypeError):
        raise IdentityError(f"{side} is unreadable: run mash login again") from None
    key = load_proof_key(token_file)
    endpoints = discover(issuer)
    tokens = refresh(endpoints.over_mtls() if tls else endpoints, client_id, refresh_token,
                     proof_key=key, tls=tls)
    save(token_file, tokens, issuer=issuer, client_id=client_id, tls=tls)
    return str(tokens["access_token"])
