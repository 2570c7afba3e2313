"""The console's calls to the broker, each as the signed-in analyst, and what a refusal
means to them."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import grpc
from starlette.concurrency import run_in_threadpool

from mash.client import BrokerClient, ClientConfig
from mash.console.config import ConsoleConfig
from mash.console.sessions import Session
from mash.v1 import lookup_pb2

P = ParamSpec("P")
T = TypeVar("T")

GRPC_MESSAGES = {
    grpc.StatusCode.UNAUTHENTICATED: "The broker did not accept your sign-in token. Sign in "
                                     "again with a current token.",
    grpc.StatusCode.PERMISSION_DENIED: "The broker refused this request for your role or "
                                       "agency.",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "Too many lookups in a short time: wait a minute and "
                                        "try again.",
    grpc.StatusCode.UNAVAILABLE: "The broker could not be reached. NO agency was checked: "
                                 "try again, or use the agencies' phone routes.",
    grpc.StatusCode.DEADLINE_EXCEEDED: "The broker did not answer in time. NO agency was "
                                       "checked: try again.",
}


class Broker:
    """The analyst's gRPC client, with the signed-in analyst's token on each call and, for a
    session with a proof key, each lookup signed with it (a fresh proof per attempt)."""

    def __init__(self, cfg: ConsoleConfig) -> None:
        self.cfg = cfg

    def client(self, session: Session) -> BrokerClient:
        # UnsignedSession (nothing sent) for a bound token the session holds no key for
        return BrokerClient(ClientConfig(self.cfg.broker_address, self.cfg.broker_server_name,
                                         self.cfg.client_tls, session.token,
                                         proof_key=session.signing_key()))

    def lookup(self, session: Session,
               request: lookup_pb2.LookupRequest) -> lookup_pb2.LookupResponse:
        with self.client(session) as client:
            return client.lookup(request, timeout=self.cfg.broker_timeout_seconds)

    def agents(self, session: Session) -> lookup_pb2.ListAgentsResponse:
        with self.client(session) as client:
            return client.list_agents(timeout=self.cfg.broker_timeout_seconds)


async def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """A blocking broker call off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)
