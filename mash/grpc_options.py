"""Channel and server options shared by every MASH endpoint."""

from __future__ import annotations

import grpc

# Lookups are small; answers carry at most a few dozen matches. Anything larger is refused
# by gRPC itself with RESOURCE_EXHAUSTED before it reaches our code.
MAX_MESSAGE_BYTES = 1 * 1024 * 1024

KEEPALIVE_CLIENT = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]
KEEPALIVE_SERVER = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_ping_strikes", 0),
]
MESSAGE_LIMITS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


def channel_options(server_name: str | None = None) -> list[tuple[str, object]]:
    options: list[tuple[str, object]] = [*KEEPALIVE_CLIENT, *MESSAGE_LIMITS]
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return options


def server_options() -> list[tuple[str, object]]:
    return [*KEEPALIVE_SERVER, *MESSAGE_LIMITS, ("grpc.so_reuseport", 0)]


def bind(server: grpc.aio.Server, address: str,
         credentials: grpc.ServerCredentials | None = None) -> int:
    """Listen on `address` and return the port, or raise OSError saying why not (grpc either
    returns 0 or raises RuntimeError with a traceback-shaped message, by version)."""
    try:
        port = (server.add_secure_port(address, credentials) if credentials is not None
                else server.add_insecure_port(address))
    except RuntimeError:
        port = 0
    if port == 0:
        raise OSError(f"cannot listen on {address}: the address is in use or not valid here")
    return port
