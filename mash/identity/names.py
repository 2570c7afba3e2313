"""Identities carried in certificate URI SANs.

`spiffe://mash.exchange/agency/<agency>/agent`   an agency's agent
`spiffe://mash.exchange/agency/<agency>/client`  an agency's analyst client (CLI, console)
`spiffe://mash.exchange/broker/<name>`           a broker
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mash.errors import IdentityError

TRUST_DOMAIN = "mash.exchange"
AGENCY_ID = re.compile(r"^[a-z][a-z0-9_-]{1,39}$")
Kind = Literal["agent", "client", "broker"]


@dataclass(frozen=True)
class PeerIdentity:
    kind: Kind
    name: str  # the agency id for agents and clients; the broker's name for brokers

    @property
    def uri(self) -> str:
        if self.kind == "broker":
            return f"spiffe://{TRUST_DOMAIN}/broker/{self.name}"
        return f"spiffe://{TRUST_DOMAIN}/agency/{self.name}/{self.kind}"

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


def check_agency_id(agency: str) -> str:
    if not AGENCY_ID.match(agency):
        raise IdentityError(
            f"agency id {agency!r} is not valid: use 2-40 lower-case letters, digits, '-' or '_', "
            "starting with a letter"
        )
    return agency


_URI = re.compile(
    rf"^spiffe://{re.escape(TRUST_DOMAIN)}/(?:agency/(?P<agency>[a-z][a-z0-9_-]{{1,39}})/"
    r"(?P<kind>agent|client)|broker/(?P<broker>[a-z][a-z0-9_.-]{1,62}))$"
)


def parse_identity_uri(uri: str) -> PeerIdentity | None:
    match = _URI.match(uri)
    if not match:
        return None
    if match["broker"]:
        return PeerIdentity("broker", match["broker"])
    return PeerIdentity(match["kind"], match["agency"])  # type: ignore[arg-type]
