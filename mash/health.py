"""The standard gRPC health service, shared by broker and agents: Check, Watch and List."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


# types-grpcio-health-checking's health_pb2 predates Health/List, which grpcio-health-checking
# itself has: the List messages are named once here, untyped.
_HealthListResponse: Callable[..., Message] = (
    health_pb2.HealthListResponse)  # type: ignore[attr-defined]


class _Servicer(health.aio.HealthServicer):
    """grpcio-health-checking's servicer, which leaves List unimplemented, with List."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: dict[str, Any] = {"": SERVING}  # as set, mirrored here for List

    async def List(self, request: Message,
                   context: grpc.aio.ServicerContext[Any, Any]) -> Message:
        return _HealthListResponse(statuses={
            name: health_pb2.HealthCheckResponse(status=status)
            for name, status in sorted(self.statuses.items())})


class Health:
    """Wraps the servicer; `set(service, ok)` flips a service's status."""

    def __init__(self) -> None:
        self.servicer = _Servicer()
        self._shut = False

    def add_to(self, server: grpc.aio.Server) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)

    async def set(self, service: str, ok: bool) -> None:
        if self._shut:
            return  # as the servicer: after shutdown nothing goes back to SERVING
        status = SERVING if ok else NOT_SERVING
        self.servicer.statuses[service] = status
        await self.servicer.set(service, status)

    async def shutdown(self) -> None:
        self._shut = True
        for name in self.servicer.statuses:
            self.servicer.statuses[name] = NOT_SERVING
        await self.servicer.enter_graceful_shutdown()
