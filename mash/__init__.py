"""MASH Exchange: a privacy-preserving information-sharing broker for MASHs.

The supported Python surface is what ``mash.__all__`` names: the analyst's client, the
request builder and the errors they raise. Every error is a `MashError` whose ``str()`` is
one line a person can act on; `BrokerError` is also the ``grpc.RpcError`` grpc raised, with
its ``google.rpc.Status`` details read. The modules below ``mash`` implement the ``mash``
command, the broker and the agent: importable, but not a promise. The names load on first
use, so ``import mash`` stays cheap for the command line.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from mash._native import preload_rego

preload_rego()  # before grpc or protobuf load libstdc++: see mash/_native.py

__version__ = "0.1.0"

if TYPE_CHECKING:
    from mash.client import BlindResult, BrokerClient, BrokerError, ClientConfig
    from mash.errors import (
        ConfigError,
        IdentityError,
        MashError,
        Problem,
        SignatureError,
        ValidationError,
    )
    from mash.requests import build_request

_HOMES = {
    "BrokerClient": "mash.client", "ClientConfig": "mash.client",
    "BlindResult": "mash.client", "BrokerError": "mash.client",
    "MashError": "mash.errors", "ConfigError": "mash.errors",
    "ValidationError": "mash.errors", "Problem": "mash.errors",
    "IdentityError": "mash.errors", "SignatureError": "mash.errors",
    "build_request": "mash.requests",
}

__all__ = ["BlindResult", "BrokerClient", "BrokerError", "ClientConfig", "ConfigError",
           "IdentityError", "MashError", "Problem", "SignatureError", "ValidationError",
           "__version__", "build_request"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mash' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
