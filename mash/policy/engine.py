"""Evaluating the bundle: in process with regopy (rego-cpp), or on an OPA server.

Both engines answer `evaluate(entrypoint, input)` with the JSON value of a rule, or None when
the rule is undefined; any evaluation failure raises PolicyError. Callers fail closed on both.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol

from mash.logs import get_logger
from mash.policy.bundle import Bundle
from mash.policy.errors import AgreementError, PolicyError

log = get_logger(__name__)
ENTRYPOINTS = (
    "mash/routing/decisions",
    "mash/routing/purposes",
    "mash/disclosure/gate",
    "mash/disclosure/records",
)


# The OPA engine is an extra: its client pulls aiohttp and requests, which the default
# in-process engine does not need.
OPA_EXTRA_MISSING = ("opa needs the OPA client (opa-python-client), which this install "
                     "lacks: pip install 'mash-exchange[opa]', or use engine: rego (in "
                     "process)")


def opa_available() -> bool:
    """Whether the `opa` extra (opa-python-client) is installed."""
    try:
        import opa_client  # noqa: F401
    except ImportError:
        return False
    return True


class Engine(Protocol):
    def evaluate(self, entrypoint: str, input_doc: dict[str, Any]) -> Any: ...


class RegoEngine:
    """The bundle compiled once by regopy; evaluations are serialised (regopy is not
    thread-safe) and take a fraction of a millisecond."""

    def __init__(self, bundle: Bundle) -> None:
        from regopy import Interpreter, RegoError

        from mash import _native

        if _native.ORDER_OK is False:
            log.warning("rego_allocator_mismatch", reason="a C++ library was loaded before "
                        "mash: import mash first, or policy evaluation leaks memory")
        self._lock = threading.Lock()
        self._rego = Interpreter()
        self._rego.strict_built_in_errors = True
        try:
            for name, source in sorted(bundle.modules.items()):
                self._rego.add_module(name, source)
            self._rego.add_data_json(json.dumps(bundle.data()))
            self._compiled = self._rego.build(None, list(ENTRYPOINTS))
        except RegoError as exc:
            raise AgreementError(f"the policy library does not compile: {exc}") from None
        if not self._compiled.ok():
            raise AgreementError("the policy library does not compile: "
                                 f"{self._compiled.node().json()[:500]}")

    def evaluate(self, entrypoint: str, input_doc: dict[str, Any]) -> Any:
        from regopy import Input, RegoError

        with self._lock:
            try:
                self._rego.set_input(Input(input_doc))
                output = self._rego.query_bundle_entrypoint(self._compiled, entrypoint)
            except RegoError:
                # Rego's own text may quote the input (a record's values): never pass it on.
                raise PolicyError(f"policy evaluation failed at {entrypoint} "
                                  "(RegoError)") from None
            if not output.ok():
                raise PolicyError(f"policy evaluation failed at {entrypoint} "
                                  "(the policy raised an error)")
            if not output.results or not output.results[0].expressions:
                return None  # undefined
            return output.results[0].expressions[0]


class OpaEngine:
    """The same bundle on a real OPA server, through its REST Data API.

    At load, the library modules are PUT to /v1/policies/mash-exchange/<path> and the data to
    /v1/data/agreements, /v1/data/federation and /v1/data/grants; each decision POSTs
    {"input": ...} to /v1/data/<entrypoint> and reads "result" (absent means undefined).
    The OPA server must be dedicated to MASH Exchange: these data paths are ours.
    """

    def __init__(self, bundle: Bundle, url: str, timeout: float = 1.0) -> None:
        from urllib.parse import urlparse

        try:
            from opa_client import OpaClient
        except ImportError:
            raise AgreementError(f"engine {OPA_EXTRA_MISSING}") from None

        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise AgreementError(f"OPA url {url!r} is not like http://opa:8181")
        self._client = OpaClient(host=parsed.hostname, port=parsed.port or 8181,
                                 ssl=parsed.scheme == "https", timeout=timeout, retries=0)
        try:
            for name, source in sorted(bundle.modules.items()):
                self._client.update_policy_from_string(source, f"mash-exchange/{name}",
                                                       rego_compat=False)
            for path, document in sorted(bundle.data().items()):
                self._client.update_or_create_data(document, path)
        except Exception as exc:  # the client raises requests and its own error types
            raise AgreementError(f"could not load the bundle into OPA at {url}: {exc}") from None

    def evaluate(self, entrypoint: str, input_doc: dict[str, Any]) -> Any:
        try:
            reply = self._client.query_rule(input_doc, entrypoint.replace("/", "."))
        except Exception as exc:  # OPA's reply may quote the input: only the error's class
            raise PolicyError(f"OPA did not answer for {entrypoint} "
                              f"({type(exc).__name__})") from None
        if not isinstance(reply, dict):
            raise PolicyError(f"OPA sent an unreadable answer for {entrypoint}")
        return reply.get("result")
