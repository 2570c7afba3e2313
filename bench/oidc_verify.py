"""Verifying tokens of a real OpenID provider (tests/oidc/provider.mjs, npm oidc-provider):
the first token (discovery + JWKS fetch), fresh tokens with the keys cached, a token seen
before, and the first token after a key rotation (an unknown kid fetches the JWKS again).

    python -m bench.oidc_verify [--tokens 300]   ->  bench/results/oidc_verify.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.results_io import percentile, record, speed_probe
from mash.config import read_model
from mash.identity import device
from mash.identity.tokens import AuthConfig, TokenVerifier
from tests.oidc_support import CLI_CLIENT, OidcProvider, device_tokens


def ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--name", default="oidc_verify")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        idp = OidcProvider.start(Path(tmp))
        try:
            endpoints = device.discover(idp.issuer)
            first = device_tokens(idp, "alice")
            refresh_token = str(first["refresh_token"])
            tokens = []
            for _ in range(args.tokens):  # distinct access tokens, one refresh each
                reply = device.refresh(endpoints, CLI_CLIENT, refresh_token)
                refresh_token = str(reply["refresh_token"])
                tokens.append(str(reply["access_token"]))
            verifier = TokenVerifier.from_config(read_model(AuthConfig, {"issuers": [
                idp.issuer_config(jwks_refetch_cooldown_seconds=0)]}, "auth", Path.cwd()))
            started = time.perf_counter()
            verifier.verify(str(first["access_token"]))
            cold = ms(started)
            fresh = []
            for token in tokens:
                started = time.perf_counter()
                verifier.verify(token)
                fresh.append(ms(started))
            seen = []
            for token in tokens:
                started = time.perf_counter()
                verifier.verify(token)
                seen.append(ms(started))
            idp.rotate(drop_old=True)
            rotated = device_tokens(idp, "alice")["access_token"]
            started = time.perf_counter()
            verifier.verify(str(rotated))
            after_rotation = ms(started)
        finally:
            idp.stop()
    fresh.sort()
    seen.sort()
    figures = {
        "tokens": args.tokens, "speed_probe_ms": speed_probe(),
        "first_token_ms": round(cold, 2),
        "fresh_token_keys_cached_ms": {"p50": round(percentile(fresh, 50), 3),
                                       "p99": round(percentile(fresh, 99), 3)},
        "token_seen_before_ms": {"p50": round(percentile(seen, 50), 4),
                                 "p99": round(percentile(seen, 99), 4)},
        "first_token_after_rotation_ms": round(after_rotation, 2),
    }
    print(record(args.name, figures).read_text())


if __name__ == "__main__":
    main()
