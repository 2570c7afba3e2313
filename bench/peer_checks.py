"""What pinned peers, revocation and reloadable credentials cost per connection and per call.

- `revocation_check_us`: the broker's CRL check on one call (a list of `--revoked` entries);
- `credentials_fetch_us`: the broker's question before each handshake, files unchanged;
- `pin_handshake_ms`: the agent's first handshake (Python ssl) before each stream, to a real
  gRPC server on loopback presenting a broker certificate.

    python -m bench.peer_checks [--n 2000] [--revoked 1000] [--name peer_checks]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from cryptography import x509

from bench.results_io import percentile, record, speed_probe
from mash.identity import certs, crl, pinning
from mash.identity.names import PeerIdentity
from mash.identity.revocation import RevocationConfig, RevocationList
from mash.identity.tls import ReloadingServerCredentials, TlsFiles


def timed(fn: Callable[[], object], n: int, scale: float) -> dict[str, float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * scale)
    out.sort()
    return {"median": round(statistics.median(out), 2), "p99": round(percentile(out, 99), 2),
            "n": n}


async def _handshakes(directory: Path, n: int) -> dict[str, float]:
    broker = TlsFiles(ca=directory / "ca.pem", cert=directory / "broker-broker.pem",
                      key=directory / "broker-broker.key")
    agent = TlsFiles(ca=directory / "ca.pem", cert=directory / "police-agent.pem",
                     key=directory / "police-agent.key")
    server = grpc.aio.server()
    port = server.add_secure_port("127.0.0.1:0", ReloadingServerCredentials(
        broker, lambda _i: None).credentials())
    await server.start()
    try:
        return await asyncio.to_thread(
            timed, lambda: pinning.fetch_sync(f"127.0.0.1:{port}", agent), n, 1000)
    finally:
        await server.stop(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peer_checks")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--revoked", type=int, default=1000)
    parser.add_argument("--name", default="peer_checks", help="results file name")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        certs.create_ca(d)
        certs.issue(d, PeerIdentity("broker", "broker"), dns_names=("localhost",),
                    ip_addresses=("127.0.0.1",))
        agent = certs.issue(d, PeerIdentity("agent", "police"))
        entries = tuple(
            x509.RevokedCertificateBuilder().serial_number(1000 + i)
            .revocation_date(certs._now()).build() for i in range(args.revoked))
        crl.sign_crl(d, add=entries)
        revocation = RevocationList(RevocationConfig(crl=d / crl.CRL_FILE, reload_seconds=5.0),
                                    d / "ca.pem")
        revocation.reload()
        pem = agent.cert.read_bytes()
        check = timed(lambda: revocation.check(pem), args.n, 1e6)
        fetcher = ReloadingServerCredentials(
            TlsFiles(ca=d / "ca.pem", cert=d / "broker-broker.pem", key=d / "broker-broker.key"),
            lambda _i: None)
        fetch = timed(fetcher._fetch, args.n, 1e6)
        handshake = asyncio.run(_handshakes(d, min(args.n, 300)))
    figures = {"revoked_entries": args.revoked, "revocation_check_us": check,
               "credentials_fetch_us": fetch, "pin_handshake_ms": handshake,
               "speed_probe_ms": speed_probe()}
    print(figures)
    record(args.name, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
