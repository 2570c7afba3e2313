"""The OPA adapter's wire behaviour, against an OPA-Data-API-compatible endpoint.

No OPA binary can be installed on these machines, so this test serves OPA's REST API
(PUT /v1/policies/<id>, PUT /v1/data/<path>, POST /v1/data/<path> with {"input": ...}
answering {"result": ...}, or {} when undefined) from a small HTTP server that evaluates with
rego-cpp. What it proves: the adapter speaks the Data API as documented (methods, paths,
content types, request and response shapes), loads the library and data before deciding,
gives the same decisions as the in-process engine, and fails closed on HTTP errors, timeouts,
undefined results and an unreachable server. What it does not prove: that OPA itself
evaluates our library identically to rego-cpp (both implement Rego v1; the library avoids
engine-specific built-ins), nor OPA's own bundle or discovery features, which we do not use.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mash.demo.federation import POLICIES
from mash.policy import bundle
from mash.policy.decisions import LoadedPolicy
from mash.policy.engine import OpaEngine, RegoEngine
from mash.policy.errors import AgreementError, PolicyError
from mash.policy.model import Requester

TODAY = dt.date(2026, 6, 1)


class OpaLike(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.modules: dict[str, str] = {}
        self.data: dict[str, object] = {}
        self.requests: list[tuple[str, str, str]] = []  # method, path, content type
        self.fail_with: int | None = None

    def evaluate(self, path: str, input_doc: object) -> tuple[bool, object]:
        from regopy import Interpreter

        rego = Interpreter()
        rego.strict_built_in_errors = True
        for name, source in self.modules.items():
            rego.add_module(name, source)
        rego.add_data_json(json.dumps(self.data))
        rego.set_input_term(json.dumps(input_doc))
        output = rego.query("x := data." + path.replace("/", "."))
        if not output.ok():
            raise RuntimeError(str(output))
        if not output.results or "x" not in output.results[0].bindings:
            return False, None
        return True, output.results[0].bindings["x"]


class Handler(BaseHTTPRequestHandler):
    server: OpaLike

    def log_message(self, *args) -> None:
        pass

    def _reply(self, status: int, body: object | None = None) -> None:
        raw = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_PUT(self) -> None:
        body = self._body()
        self.server.requests.append(("PUT", self.path, self.headers.get("Content-Type", "")))
        if self.path.startswith("/v1/policies/"):
            self.server.modules[self.path.removeprefix("/v1/policies/")] = body.decode()
            return self._reply(200, {})
        if self.path.startswith("/v1/data/"):
            self.server.data[self.path.removeprefix("/v1/data/")] = json.loads(body)
            return self._reply(204)
        return self._reply(404, {"code": "not_found"})

    def do_POST(self) -> None:
        body = json.loads(self._body())
        self.server.requests.append(("POST", self.path, self.headers.get("Content-Type", "")))
        if self.server.fail_with:
            return self._reply(self.server.fail_with, {"code": "internal_error",
                                                       "message": "boom"})
        try:
            defined, value = self.server.evaluate(self.path.removeprefix("/v1/data/"),
                                                  body["input"])
        except RuntimeError as exc:
            return self._reply(500, {"code": "internal_error", "message": str(exc)})
        return self._reply(200, {"result": value} if defined else {})


@pytest.fixture
def opa():
    server = OpaLike()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def built() -> bundle.Bundle:
    return bundle.build(POLICIES)


REQUESTS = [
    ("police", Requester("mash", "analyst", "child_safeguarding", "research")),
    ("police", Requester("mash", "ig_lead", "child_safeguarding", "research")),
    ("education", Requester("mash", "analyst", "child_safeguarding", "triage")),
    ("probation", Requester("mash", "analyst", "child_safeguarding", "research")),
]


def test_loads_the_bundle_through_the_data_api(opa, built) -> None:
    OpaEngine(built, f"http://127.0.0.1:{opa.server_port}")
    puts = [(m, p, c) for m, p, c in opa.requests if m == "PUT"]
    assert ("PUT", "/v1/policies/mash-exchange/mash/agreements.rego", "text/plain") in puts
    assert ("PUT", "/v1/data/agreements", "application/json") in puts
    assert ("PUT", "/v1/data/federation", "application/json") in puts
    assert ("PUT", "/v1/data/grants", "application/json") in puts
    assert set(opa.modules) == {f"mash-exchange/{m}" for m in built.modules}


def test_same_decisions_as_the_in_process_engine(opa, built) -> None:
    remote = LoadedPolicy(built, OpaEngine(built, f"http://127.0.0.1:{opa.server_port}"))
    local = LoadedPolicy(built, RegoEngine(built))
    for owner, requester in REQUESTS:
        assert remote.gate(owner, requester, TODAY) == local.gate(owner, requester, TODAY)
    assert remote.purposes() == local.purposes()
    posts = [p for m, p, _ in opa.requests if m == "POST"]
    assert "/v1/data/mash/disclosure/gate" in posts
    assert "/v1/data/mash/routing/purposes" in posts


def test_http_errors_fail_closed(opa, built) -> None:
    engine = OpaEngine(built, f"http://127.0.0.1:{opa.server_port}")
    opa.fail_with = 500
    with pytest.raises(PolicyError, match="OPA did not answer"):
        LoadedPolicy(built, engine).gate(*REQUESTS[0], TODAY)


def test_undefined_result_fails_closed(opa, built) -> None:
    engine = OpaEngine(built, f"http://127.0.0.1:{opa.server_port}")
    opa.modules.clear()  # the server lost our library: every rule is now undefined
    assert engine.evaluate("mash/disclosure/gate", {}) is None
    with pytest.raises(PolicyError, match="no decision"):
        LoadedPolicy(built, engine).gate(*REQUESTS[0], TODAY)


def test_unreachable_server(built) -> None:
    with pytest.raises(AgreementError, match="could not load the bundle into OPA"):
        OpaEngine(built, "http://127.0.0.1:1")


def test_a_server_that_goes_away_fails_closed(opa, built) -> None:
    engine = OpaEngine(built, f"http://127.0.0.1:{opa.server_port}", timeout=0.5)
    opa.shutdown()
    opa.server_close()
    with pytest.raises(PolicyError):
        engine.evaluate("mash/disclosure/gate", {})


def test_bad_url_is_refused(built) -> None:
    with pytest.raises(AgreementError, match="is not like"):
        OpaEngine(built, "opa:8181")


def test_store_selects_the_opa_engine_from_config(opa, tmp_path) -> None:
    from mash.config import read_model
    from mash.demo.federation import sign_policies
    from mash.policy.store import PolicyConfig, PolicyStore

    (tmp_path / "certs").mkdir()
    path = sign_policies(tmp_path)
    cfg = read_model(PolicyConfig, {
        "bundle": str(path), "trusted_signers": [str(tmp_path / "certs" / "ig-lead.pub")],
        "engine": "opa", "opa": {"url": f"http://127.0.0.1:{opa.server_port}"}},
        "agent.yaml: policy", tmp_path)
    store = PolicyStore(cfg)
    assert store.reload(), store.error
    assert isinstance(store.loaded().engine, OpaEngine)
    assert store.loaded().gate(*REQUESTS[0], TODAY).allowed
