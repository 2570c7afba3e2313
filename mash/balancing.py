"""gRPC client-side load balancing over several brokers: round robin, with health checks.

One configured address is given to gRPC as it is: its DNS resolver finds every address the
name has, and round robin spreads calls over them. Several addresses become one static
`ipv4:`/`ipv6:` target (each name resolved now). Either way gRPC watches each broker's
standard health service (`mash.v1.LookupService`) and sends calls only to brokers that
say SERVING; a broker that dies or drains leaves the rotation at once.
"""

from __future__ import annotations

import json
import socket

from mash.addresses import is_ip, split_host_port
from mash.errors import ConfigError

HEALTH_SERVICE = "mash.v1.LookupService"
SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "healthCheckConfig": {"serviceName": HEALTH_SERVICE},
}


def channel_options() -> list[tuple[str, object]]:
    return [("grpc.service_config", json.dumps(SERVICE_CONFIG)),
            ("grpc.enable_retries", 0),  # ours retry on another broker, under the lookup id
            # a restarted broker rejoins the rotation within 2 s (gRPC's default backoff
            # grows to 2 minutes), so a rolling restart always leaves one to go to
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000)]


def _resolve(host: str, port: int) -> list[str]:
    if is_ip(host):
        return [host]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError(f"broker address {host}:{port} does not resolve ({exc.strerror or exc})"
                          ) from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def target(addresses: list[str], server_name: str | None) -> tuple[str, str | None]:
    """The channel target for `addresses` and the TLS name to check the brokers against."""
    if len(addresses) == 1:
        return addresses[0], server_name
    parsed = [split_host_port(a) for a in addresses]
    hosts = {host for host, _ in parsed}
    if server_name is None:
        if len(hosts) > 1:
            raise ConfigError(
                "several broker addresses with different names: set broker.server_name to "
                "the name every broker's certificate carries")
        server_name = next(iter(hosts))
    ips = [(ip, port) for host, port in parsed for ip in _resolve(host, port)]
    v6 = {":" in ip for ip, _ in ips}
    if len(v6) > 1:
        raise ConfigError("the broker addresses mix IPv4 and IPv6: list one family")
    if v6 == {True}:
        return "ipv6:" + ",".join(f"[{ip}]:{port}" for ip, port in ips), server_name
    return "ipv4:" + ",".join(f"{ip}:{port}" for ip, port in ips), server_name
