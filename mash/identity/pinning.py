"""Pinned peers: an agent or client talks only to the broker identities its config names.

gRPC's Python API cannot show a client the server's certificate, but its handshake checks
the server's DNS names against the name the channel asks for. Broker and console
certificates carry their identity as a DNS name too (`PeerIdentity.pin_name`), and every
broker's also carries `broker.id.mash.invalid`, so a channel that asks for one of those
names is refused *by the handshake itself* when the server is anything else (a console's
HTTPS certificate, an agent's, a broker not in the list).

With several pinned names a channel can ask for only one: a first TLS handshake (Python's
ssl, same CA and client certificate) reads which identity the server presents, and the
channel then asks for exactly that one, so gRPC's own handshake still enforces it. The same
first handshake explains a refusal in words (`diagnose`).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mash.config import Invalid, text_list
from mash.errors import IdentityError
from mash.identity.certs import identity_from_pem
from mash.identity.names import PIN_DOMAIN, PeerIdentity, identity_from_uri
from mash.identity.tls import TlsFiles

ANY_BROKER = f"broker.{PIN_DOMAIN}"  # carried by every broker certificate
HANDSHAKE_SECONDS = 5.0
# what gRPC says when the server's certificate lacks the name the channel asked for
PIN_FAILURE = "Hostname Verification Check failed"


class PeerRefused(IdentityError):
    """The server is not a broker this agent or client accepts."""


@dataclass(frozen=True)
class BrokerPins:
    """The broker identities accepted (`broker.identities`); empty: any broker of our CA."""

    identities: tuple[PeerIdentity, ...] = ()

    @classmethod
    def of(cls, uris: list[str]) -> BrokerPins:
        """The pins of `broker.identities` (Invalid names the entry, as `[i]`)."""
        found: list[PeerIdentity] = []
        for i, uri in enumerate(uris):
            try:
                ident = identity_from_uri(uri)
            except IdentityError as exc:
                raise Invalid(str(exc), key=f"[{i}]") from None
            if ident.kind != "broker":
                raise Invalid(f"{uri} is a {ident.kind} identity, never a broker: name a "
                              "broker, spiffe://mash.exchange/broker/<name>", key=f"[{i}]")
            found.append(ident)
        return cls(tuple(found))

    @classmethod
    def validate(cls, value: Any) -> BrokerPins:
        """A pydantic validator: a list of broker identity URIs (or pins already made)."""
        if isinstance(value, BrokerPins):
            return value
        return cls.of(text_list(value))

    def accepts(self, ident: PeerIdentity | None) -> bool:
        if ident is None or ident.kind != "broker":
            return False
        return not self.identities or ident in self.identities

    def describe(self) -> str:
        return (", ".join(i.uri for i in self.identities) if self.identities
                else "any broker certificate of the federation's CA")

    def fixed_name(self) -> str | None:
        """The name a channel asks for, when no first handshake is needed to choose it."""
        if not self.identities:
            return ANY_BROKER
        if len(self.identities) == 1:
            return self.identities[0].pin_name
        return None


@dataclass(frozen=True)
class Presented:
    """What the server showed in a first handshake."""

    pem: bytes
    identity: PeerIdentity | None
    dns_names: tuple[str, ...]


def _split(address: str) -> tuple[str, int]:
    target = address.removeprefix("dns:///").removeprefix("ipv4:").removeprefix("ipv6:")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise IdentityError(f"broker address {address!r} is not host:port")
    return host.strip("[]"), int(port)


def _context(tls: TlsFiles) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca))
    ctx.check_hostname = False  # the identity, not the host name, is checked (below)
    ctx.load_cert_chain(str(tls.cert), str(tls.key))
    return ctx


def _presented(der: bytes | None) -> Presented:
    if not der:
        raise PeerRefused("the server presented no certificate")
    cert = x509.load_der_x509_certificate(der)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(sans.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    return Presented(pem, identity_from_pem(pem), names)


def fetch_sync(address: str, tls: TlsFiles, server_name: str | None = None,
               timeout: float = HANDSHAKE_SECONDS) -> Presented:
    """A TLS handshake with the server (chain checked against our CA): what it presents."""
    host, port = _split(address)
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                _context(tls).wrap_socket(raw, server_hostname=server_name or host) as conn:
            return _presented(conn.getpeercert(binary_form=True))
    except ssl.SSLCertVerificationError as exc:
        raise PeerRefused(f"the server at {address} presents a certificate our CA did not "
                          f"sign or that is not valid now ({exc.verify_message})") from None
    except (OSError, ssl.SSLError) as exc:
        raise IdentityError(f"cannot reach the broker at {address} for a TLS handshake: "
                            f"{exc.strerror or exc}") from None


async def fetch(address: str, tls: TlsFiles, server_name: str | None = None,
                timeout: float = HANDSHAKE_SECONDS) -> Presented:
    return await asyncio.to_thread(fetch_sync, address, tls, server_name, timeout)


def choose(presented: Presented, pins: BrokerPins, address: str) -> str:
    """The name a channel must ask for to reach this server, or PeerRefused saying why not."""
    ident = presented.identity
    if not pins.accepts(ident):
        shown = f"{ident} ({ident.uri})" if ident else "no MASH identity"
        raise PeerRefused(f"the server at {address} presents {shown}, which is not a broker "
                          f"this end accepts (broker.identities: {pins.describe()})")
    assert ident is not None
    if ident.pin_name not in presented.dns_names:
        raise PeerRefused(f"the broker certificate at {address} predates pinned peers (it "
                          f"lacks {ident.pin_name}): reissue it with `mash certs broker`")
    return ident.pin_name


def diagnose(address: str, tls: TlsFiles, pins: BrokerPins,
             server_name: str | None = None) -> str:
    """Why a pinned channel could not connect, in one line (after gRPC said PIN_FAILURE)."""
    try:
        choose(fetch_sync(address, tls, server_name), pins, address)
    except IdentityError as exc:
        return str(exc)
    return (f"the broker at {address} changed its certificate during the handshake: "
            "try again")
