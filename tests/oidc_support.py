"""A real OpenID provider for tests: tests/oidc/provider.mjs (npm oidc-provider) on loopback.

`OidcProvider.start(...)` writes its configuration (test users with their claims, the
console's confidential client, the CLI's device-flow client), starts Node and waits for it.
`approve_device(...)` plays the user who types the device code into the provider's pages.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from mash.identity.device import ClientCertificate
from mash.identity.dpop import ClientKey

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "oidc" / "provider.mjs"
RESOURCE = "urn:mash-exchange"
CONSOLE_CLIENT = "mash-console"
CONSOLE_SECRET = "console-test-secret-not-for-production"
CLI_CLIENT = "mash-cli"
MTLS_CLIENT = "mash-cli-mtls"  # device flow over the mTLS aliases: certificate-bound tokens


@dataclass(frozen=True)
class Mtls:
    """The provider's RFC 8705 listener (`OidcProvider.start(mtls=...)`): its HTTPS
    certificate and key, the CA its clients' certificates must come from (tls_client_auth),
    and the client certificate identity (URI SAN) the `mash-cli-mtls` client is registered
    with."""

    cert: Path
    key: Path
    ca: Path
    client_uri: str
    port: int = 0

    @classmethod
    def issued(cls, certs: Path, agency: str) -> Mtls:
        """A listener certificate for 127.0.0.1 from the federation CA in `certs` (a test
        IdP's HTTPS certificate, trusted by clients through ca.pem), for `agency`'s analysts'
        client certificates."""
        from mash.identity import certs as certs_mod
        from mash.identity.names import PeerIdentity

        paths = certs_mod.issue(certs, PeerIdentity("broker", "oidc-idp"),
                                ip_addresses=("127.0.0.1",), out_stem="oidc-idp-tls")
        return cls(paths.cert, paths.key, certs / "ca.pem",
                   PeerIdentity("client", agency).uri)

USERS: dict[str, dict[str, Any]] = {
    "alice": {"claims": {"agency": "police", "role": "analyst", "team": "mash-north",
                         "groups": ["mash-analysts"]}},
    "sam": {"claims": {"agency": "police", "role": "analyst", "team": "mash-north",
                       "groups": ["mash-supervisors"]}},
    "nora": {"claims": {"agency": "health", "team": "mash-north"}},  # no role claim
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def available() -> str:
    """Why the provider cannot run here, or "" when it can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (ROOT / "node_modules" / "oidc-provider").is_dir():
        return "npm install has not been run (node_modules/oidc-provider is missing)"
    return ""


@dataclass
class OidcProvider:
    issuer: str
    process: subprocess.Popen[str]
    config_path: Path
    users: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def start(cls, workdir: Path, *, console_redirect: str = "http://127.0.0.1:1/callback",
              console_logout_redirect: str = "http://127.0.0.1:1/",
              users: dict[str, dict[str, Any]] | None = None,
              access_token_ttl: int = 300, port: int | None = None,
              listen_port: int | None = None, dpop: bool = True,
              mtls: Mtls | None = None) -> OidcProvider:
        """`port` is the issuer URL's; `listen_port`, when given, is where the provider
        listens (behind a tests/counting_proxy.py on `port`); `dpop=False`: a provider that
        ignores DPoP proofs (its tokens are never bound to a key); `mtls`: an RFC 8705
        listener too (mtls_endpoint_aliases), and the `mash-cli-mtls` client whose tokens
        are bound to its client certificate (cnf.x5t#S256)."""
        workdir.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        chosen = users if users is not None else USERS
        config: dict[str, Any] = {
            "port": port, "listen_port": listen_port or port,
            "audience": "mash-exchange", "resource": RESOURCE,
            "access_token_ttl": access_token_ttl, "users": chosen, "dpop": dpop,
            "clients": [
                {"client_id": CONSOLE_CLIENT, "client_secret": CONSOLE_SECRET,
                 "redirect_uris": [console_redirect],
                 "post_logout_redirect_uris": [console_logout_redirect],
                 "grant_types": ["authorization_code", "refresh_token"],
                 "response_types": ["code"], "id_token_signed_response_alg": "ES256",
                 "token_endpoint_auth_method": "client_secret_basic"},
                {"client_id": CLI_CLIENT, "token_endpoint_auth_method": "none",
                 "grant_types": ["urn:ietf:params:oauth:grant-type:device_code",
                                 "refresh_token"],
                 "response_types": [], "redirect_uris": [],
                 "id_token_signed_response_alg": "ES256"},
            ],
        }
        if mtls is not None:
            mtls_port = mtls.port or free_port()
            config["mtls"] = {"port": mtls_port, "cert": str(mtls.cert), "key": str(mtls.key),
                              "ca": str(mtls.ca)}
            config["clients"].append(
                {"client_id": MTLS_CLIENT, "token_endpoint_auth_method": "tls_client_auth",
                 "tls_client_auth_san_uri": mtls.client_uri,
                 "tls_client_certificate_bound_access_tokens": True,
                 "grant_types": ["urn:ietf:params:oauth:grant-type:device_code",
                                 "refresh_token"],
                 "response_types": [], "redirect_uris": [],
                 "id_token_signed_response_alg": "ES256"})
        path = workdir / "oidc-provider.json"
        path.write_text(json.dumps(config))
        proc = subprocess.Popen(["node", str(SCRIPT), str(path)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("ready "):
            proc.kill()
            raise RuntimeError(f"oidc-provider did not start: {line}{proc.stderr.read()}")
        return cls(line.split()[1], proc, path, chosen)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def rotate(self, *, drop_old: bool = False) -> str:
        """A new signing key; returns its kid."""
        reply = httpx.post(f"{self.issuer}/__test/rotate", params={"drop": "1" if drop_old
                                                                   else "0"})
        reply.raise_for_status()
        return str(reply.json()["kid"])

    def kids(self) -> list[str]:
        return list(httpx.get(f"{self.issuer}/__test/health").json()["kids"])

    def issuer_config(self, **extra: Any) -> dict[str, Any]:
        """A `auth.issuers` entry for broker/agent/console configs trusting this provider."""
        entry: dict[str, Any] = {"issuer": self.issuer, "discovery": True,
                                 "agencies": ["police", "health", "csc", "education"],
                                 "roles": ["analyst", "supervisor"]}
        entry.update(extra)
        return entry


class _Forms(HTMLParser):
    """The forms of a page: action, method and fields (hidden and named inputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "id": a.get("id", ""),
                               "fields": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")


def _form(page: httpx.Response) -> tuple[str, dict[str, str]]:
    parser = _Forms()
    parser.feed(page.text)
    if not parser.forms:
        raise AssertionError(f"no form on {page.url}: {page.text[:300]}")
    form = parser.forms[0]
    return urljoin(str(page.url), form["action"] or str(page.url)), dict(form["fields"])


def approve_device(verification_uri: str, user_code: str, login: str) -> str:
    """Be the user: open the verification page, type the code, confirm, sign in. Returns
    the text of the final page."""
    with httpx.Client(follow_redirects=True, timeout=10) as web:
        action, fields = _form(web.get(verification_uri))
        fields["user_code"] = user_code
        action, fields = _form(web.post(action, data=fields))  # confirm the device
        fields["confirm"] = "yes"
        page = web.post(action, data=fields)
        action, fields = _form(page)  # the login form
        fields.update(login=login, password="any")
        done = web.post(action, data=fields)
        if 'name="prompt" value="consent"' in done.text:  # the consent page: Continue
            action, fields = _form(done)
            done = web.post(action, data=fields)
        return re.sub(r"<[^>]+>", " ", done.text)


def wait_ready(provider: OidcProvider, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{provider.issuer}/.well-known/openid-configuration").raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("oidc-provider did not answer its discovery document")


def device_tokens(provider: OidcProvider, login: str, *,
                  proof_key: ClientKey | None = None,
                  tls: ClientCertificate | None = None) -> dict[str, Any]:
    """Tokens for `login` by the device flow, the user approving through the provider's
    pages (what `mash login` does, without the CLI); bound to `proof_key` when given, or
    with `tls` to that client certificate (the `mash-cli-mtls` client, at the provider's
    mTLS aliases: what `mash login --bind-cert` does)."""
    from mash.identity import device

    endpoints = device.discover(provider.issuer)
    client = CLI_CLIENT
    if tls is not None:
        endpoints, client = endpoints.over_mtls(), MTLS_CLIENT
    code = device.start(endpoints, client, tls=tls)
    approve_device(code.verification_uri, code.user_code, login)
    return device.poll(endpoints, client, code, proof_key=proof_key, tls=tls)


def authorize(url: str, login: str, redirect_uri: str) -> str:
    """Be the user at the provider for an authorization request: sign in, consent, and
    return the URL the provider sends the browser back to (not followed)."""
    with httpx.Client(follow_redirects=False, timeout=10) as web:
        page = web.get(url)
        while True:
            location = page.headers.get("location", "")
            if location.startswith(redirect_uri):
                return location
            if page.is_redirect:
                page = web.get(urljoin(str(page.url), location))
                continue
            action, fields = _form(page)
            if "login" in fields:
                fields.update(login=login, password="any")
            page = web.post(action, data=fields)
