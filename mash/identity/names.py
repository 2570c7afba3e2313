"""Identities carried in certificate URI SANs.

`spiffe://mash.exchange/agency/<agency>/agent`   an agency's agent
`spiffe://mash.exchange/agency/<agency>/client`  an agency's analyst client (CLI, console)
`spiffe://mash.exchange/broker/<name>`           a broker
`spiffe://mash.exchange/console/<name>`          a console's HTTPS server (never a broker)

Server certificates (broker, console) also carry their identity as a DNS name under
`PIN_DOMAIN` (`<name>.broker.id.mash.invalid`): gRPC's handshake checks the server's DNS
names against the name a channel asks for, so asking for that name makes the handshake
itself refuse any server that is not that broker (see mash.identity.pinning).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from mash.errors import IdentityError

TRUST_DOMAIN = "mash.exchange"
PIN_DOMAIN = "id.mash.invalid"  # .invalid (RFC 2606) never resolves: it names, never locates
AGENCY_ID = re.compile(r"^[a-z][a-z0-9_-]{1,39}$")
SERVER_NAME = re.compile(r"^[a-z][a-z0-9.-]{1,62}$")
Kind = Literal["agent", "client", "broker", "console"]
KINDS: tuple[str, ...] = get_args(Kind)
SERVER_KINDS = ("broker", "console")  # named by server name, not by agency


@dataclass(frozen=True)
class PeerIdentity:
    kind: Kind
    name: str  # the agency id for agents and clients; the server's name for brokers, consoles

    @property
    def uri(self) -> str:
        if self.kind in SERVER_KINDS:
            return f"spiffe://{TRUST_DOMAIN}/{self.kind}/{self.name}"
        return f"spiffe://{TRUST_DOMAIN}/agency/{self.name}/{self.kind}"

    @property
    def pin_name(self) -> str:
        """The DNS name a server certificate carries for this identity (see module doc)."""
        return f"{self.name}.{self.kind}.{PIN_DOMAIN}"

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


def check_agency_id(agency: str) -> str:
    if not AGENCY_ID.match(agency):
        raise IdentityError(
            f"agency id {agency!r} is not valid: use 2-40 lower-case letters, digits, '-' or '_', "
            "starting with a letter")
    return agency


def check_server_name(name: str, kind: str = "broker") -> str:
    if not SERVER_NAME.match(name) or ".." in name or name.endswith((".", "-")):
        raise IdentityError(
            f"{kind} name {name!r} is not valid: use 2-63 lower-case letters, digits, '.' or '-',"
            " starting with a letter")
    return name


def check_host_name(host: str) -> str:
    """A DNS name to put in a certificate: never one under the reserved PIN_DOMAIN."""
    if host.lower().rstrip(".").endswith(PIN_DOMAIN):
        raise IdentityError(f"host name {host!r} is reserved for MASH identities: use the "
                            "name agents and clients dial")
    return host


_URI = re.compile(
    rf"^spiffe://{re.escape(TRUST_DOMAIN)}/(?:agency/(?P<agency>[a-z][a-z0-9_-]{{1,39}})/"
    r"(?P<kind>agent|client)|(?P<server_kind>broker|console)/(?P<server>[a-z][a-z0-9.-]{1,62}))$"
)


def parse_identity_uri(uri: str) -> PeerIdentity | None:
    match = _URI.match(uri)
    if not match:
        return None
    if match["server"]:
        return PeerIdentity(match["server_kind"], match["server"])  # type: ignore[arg-type]
    return PeerIdentity(match["kind"], match["agency"])  # type: ignore[arg-type]


def identity_from_uri(uri: str) -> PeerIdentity:
    """Parse a configured identity, or say what a valid one looks like."""
    found = parse_identity_uri(uri)
    if found is None:
        raise IdentityError(
            f"{uri!r} is not a MASH identity: write spiffe://{TRUST_DOMAIN}/broker/<name>, "
            f"spiffe://{TRUST_DOMAIN}/console/<name> or "
            f"spiffe://{TRUST_DOMAIN}/agency/<agency>/agent|client")
    return found
