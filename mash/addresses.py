"""Where the brokers are: `broker.addresses` (or the older single `broker.address`).

An agent holds one stream to every broker. A configured name that resolves to several
addresses (a DNS name with an A record per broker) is one broker per address: each gets its
own stream, and TLS still checks the certificate against the configured name.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, model_validator

from mash.config import ConfigModel, Invalid, Text
from mash.errors import ConfigError


@dataclass(frozen=True)
class BrokerAddress:
    """One broker to dial: `target` (host:port) and the name its certificate must carry."""

    target: str
    server_name: str | None


def split_host_port(address: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port); ConfigError when it is neither."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"broker address {address!r} is not host:port (e.g. "
                          "broker.mash.example:7443)")
    return host.removeprefix("[").removesuffix("]"), int(port_text)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _target(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def expand(addresses: list[str], server_name: str | None) -> list[BrokerAddress]:
    """One BrokerAddress per broker: names that resolve to several addresses are expanded
    (the certificate is then checked against the name); a name that does not resolve now is
    kept as it is, for gRPC to resolve at each reconnect."""
    out: list[BrokerAddress] = []
    for address in addresses:
        host, port = split_host_port(address)
        if is_ip(host):
            out.append(BrokerAddress(address, server_name))
            continue
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            out.append(BrokerAddress(address, server_name))
            continue
        ips = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if len(ips) <= 1:
            out.append(BrokerAddress(address, server_name))
        else:
            out.extend(BrokerAddress(_target(ip, port), server_name or host) for ip in ips)
    return list(dict.fromkeys(out))


def checked(addresses: Any) -> list[str]:
    """`addresses` as configured, checked (Invalid says why)."""
    if not isinstance(addresses, list) or not addresses or not all(
            isinstance(a, str) and a.strip() for a in addresses):
        raise Invalid("expected a non-empty list of host:port, e.g. "
                      "[broker-1.mash.example:7443, broker-2...:7443]")
    out = [a.strip() for a in addresses]
    for address in out:
        try:
            split_host_port(address)
        except ConfigError as exc:
            raise Invalid(str(exc)) from None
    if len(set(out)) != len(out):
        raise Invalid("an address is listed twice")
    return out


class BrokerAddresses(ConfigModel):
    """The addresses of a `broker:` section (`addresses`, or the older single `address`);
    `addresses` holds them all once read."""

    address: Text | None = None
    addresses: Annotated[list[str], BeforeValidator(checked)] | None = None
    server_name: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_way(cls, data: Any) -> Any:
        if (isinstance(data, dict) and data.get("address") is not None
                and data.get("addresses") is not None):
            raise Invalid("give either address or addresses, not both", key="addresses")
        return data

    @model_validator(mode="after")
    def _check(self) -> BrokerAddresses:
        if self.address is not None:
            try:
                self.addresses = checked([self.address])
            except Invalid as exc:
                raise Invalid(exc.message, key="addresses") from None
        elif self.addresses is None:
            raise Invalid("required setting is missing", key="address")
        return self

    @property
    def targets(self) -> list[str]:
        """Every broker's host:port, as configured."""
        return list(self.addresses or ())
