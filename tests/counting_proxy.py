"""A TCP proxy on loopback that records the first request line of every connection it is
handed, and forwards the bytes to a backend that may be down (then it closes the client's
connection, as a stopped server's host would refuse it). Tests count what a service sends to
an identity provider with it, whether or not the provider is up, and slow it down."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field

CHUNK = 65536


@dataclass
class CountingProxy:
    port: int
    backend_port: int
    lines: list[str] = field(default_factory=list)
    # A request whose first line contains a key waits that many seconds before it is
    # forwarded: a slow provider.
    delays: dict[str, float] = field(default_factory=dict)
    _server: socket.socket | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> CountingProxy:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    def count(self, path_part: str) -> int:
        """Connections whose first request line contains `path_part`."""
        with self._lock:
            return sum(1 for line in self.lines if path_part in line)

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            first = client.recv(CHUNK)
            if not first:
                return
            with self._lock:
                line = first.split(b"\r\n", 1)[0].decode("latin-1")
                self.lines.append(line)
                delay = max((d for k, d in self.delays.items() if k in line), default=0.0)
            time.sleep(delay)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.backend_port),
                                                    timeout=5)
            except OSError:
                return  # the backend is down: the client sees its connection closed
            with upstream:
                upstream.settimeout(None)
                upstream.sendall(first)
                back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
                back.start()
                _pump(client, upstream)
                back.join(timeout=10)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
