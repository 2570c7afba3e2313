"""The verifier does not hammer an identity provider that is down or asked for made-up kids:
one fetch per cooldown, counted at a proxy in front of a real oidc-provider (npm), and still
fail closed, saying why, once the key cache's life is over."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mash.errors import ConfigError, IdentityError
from tests.counting_proxy import CountingProxy
from tests.oidc_support import OidcProvider, available, device_tokens, free_port
from tests.test_oidc_tokens import forged, verifier

pytestmark = pytest.mark.skipif(bool(available()), reason=available() or "")
CACHE, COOLDOWN = 4.0, 1.0
DISCOVERY, JWKS = "/.well-known/openid-configuration", "/jwks"


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[CountingProxy, OidcProvider]]:
    proxy = CountingProxy(free_port(), free_port()).start()
    idp = OidcProvider.start(tmp_path / "oidc", port=proxy.port,
                             listen_port=proxy.backend_port)
    try:
        yield proxy, idp
    finally:
        idp.stop()
        proxy.stop()


def config(issuer: str) -> dict[str, object]:
    return {"issuer": issuer, "discovery": True, "agencies": ["police"], "roles": ["analyst"],
            "jwks_cache_seconds": CACHE, "jwks_refetch_cooldown_seconds": COOLDOWN,
            "fetch_timeout_seconds": 1}


def test_unknown_kids_refetch_once_per_cooldown(
        proxied: tuple[CountingProxy, OidcProvider]) -> None:
    proxy, idp = proxied
    v = verifier(config(idp.issuer))
    token = device_tokens(idp, "alice")["access_token"]  # (the device flow discovers too)
    discovered = proxy.count(DISCOVERY)
    assert v.verify(token).subject == "alice"
    assert (proxy.count(DISCOVERY) - discovered, proxy.count(JWKS)) == (1, 1)
    for _ in range(30):  # made-up kids inside the cooldown the first fetch started
        with pytest.raises(IdentityError, match=r"signing key \(kid\) is not among"):
            v.verify(forged(idp.issuer, kid="made-up"))
    assert proxy.count(JWKS) == 1
    time.sleep(COOLDOWN + 0.1)
    for _ in range(30):
        with pytest.raises(IdentityError, match=r"signing key \(kid\) is not among"):
            v.verify(forged(idp.issuer, kid="made-up"))
    assert proxy.count(JWKS) == 2  # one refetch for thirty unknown kids
    # Positive control: a genuinely rotated key is still picked up, once the cooldown allows.
    idp.rotate(drop_old=True)
    rotated = device_tokens(idp, "alice")["access_token"]
    time.sleep(COOLDOWN + 0.1)
    discovered = proxy.count(DISCOVERY)
    assert v.verify(rotated).subject == "alice"
    assert (proxy.count(DISCOVERY) - discovered, proxy.count(JWKS)) == (0, 3)


def test_a_stopped_provider_is_tried_once_per_cooldown_then_fails_closed(
        tmp_path: Path, proxied: tuple[CountingProxy, OidcProvider]) -> None:
    proxy, idp = proxied
    tokens = [device_tokens(idp, "alice")["access_token"] for _ in range(3)]
    v = verifier(config(idp.issuer))
    assert v.verify(tokens[0]).subject == "alice"
    fetched = time.monotonic()
    idp.stop()
    # Within the cache's life the cached keys serve, without asking the provider.
    assert v.verify(tokens[1]).subject == "alice"
    assert proxy.count(JWKS) == 1
    time.sleep(max(0.0, CACHE - (time.monotonic() - fetched)) + 0.2)
    started = time.monotonic()
    for _ in range(50):
        with pytest.raises(IdentityError, match=(
                r"cannot be fetched and the cached ones are older than 4 s: refusing its "
                r"tokens until the provider can be reached \(cannot fetch the JWKS .*; tried "
                r"again at most every 1 s\)")):
            v.verify(tokens[2])
    assert time.monotonic() - started < COOLDOWN  # the fifty fell inside one cooldown
    assert proxy.count(JWKS) == 2  # fifty refusals, one request
    time.sleep(COOLDOWN + 0.1)
    with pytest.raises(IdentityError, match="cannot be fetched"):
        v.verify(tokens[2])
    assert proxy.count(JWKS) == 3
    # The provider comes back (with new keys): after the cooldown its tokens verify again.
    back = OidcProvider.start(tmp_path / "oidc-again", port=proxy.port,
                              listen_port=proxy.backend_port)
    try:
        fresh = device_tokens(back, "alice")["access_token"]
        time.sleep(COOLDOWN + 0.1)
        discovered = proxy.count(DISCOVERY)
        assert v.verify(fresh).subject == "alice"
        assert proxy.count(JWKS) == 4 and proxy.count(DISCOVERY) == discovered
    finally:
        back.stop()


def test_unreachable_discovery_is_tried_once_per_cooldown() -> None:
    proxy = CountingProxy(free_port(), free_port()).start()  # nothing behind it
    try:
        issuer = f"http://127.0.0.1:{proxy.port}"
        v = verifier(config(issuer))
        for _ in range(40):
            with pytest.raises(IdentityError, match=(
                    r"cannot reach the identity provider's discovery document .*check the "
                    r"issuer URL and that the provider is up \(tried again at most every "
                    r"1 s\)")):
                v.verify(forged(issuer, kid="k"))
        assert proxy.count(DISCOVERY) == 1
        time.sleep(COOLDOWN + 0.1)
        with pytest.raises(IdentityError, match="cannot reach"):
            v.verify(forged(issuer, kid="k"))
        assert proxy.count(DISCOVERY) == 2
    finally:
        proxy.stop()


def test_cooldown_config() -> None:
    with pytest.raises(ConfigError, match=r"jwks_refetch_cooldown_seconds: .*cooldown \(60 s\) "
                                          r"is longer than the key cache's life \(10 s\)"):
        verifier({**config("https://idp.example"), "jwks_cache_seconds": 10,
                  "jwks_refetch_cooldown_seconds": 60})
    # Without a cooldown given, it is 30 s or the cache's life, whichever is shorter.
    entry = {**config("https://idp.example"), "jwks_cache_seconds": 2}
    del entry["jwks_refetch_cooldown_seconds"]
    short = verifier(entry)
    issuer = short.issuer("https://idp.example")
    assert issuer is not None and issuer.remote is not None
    assert issuer.remote.cooldown_seconds == 2
