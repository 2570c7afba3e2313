"""A broker and agents trusting a real OpenID provider: its tokens answer, and when its
keys cannot be had past the cache's life the agent answers NOT_CHECKED and the broker
UNAUTHENTICATED, each saying why."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import yaml

from mash.demo import federation
from mash.v1 import answer_pb2 as R
from tests.helpers import Running, build_federation, lookup_request
from tests.oidc_support import OidcProvider, available, device_tokens

pytestmark = pytest.mark.skipif(bool(available()), reason=available() or "")
AGENTS = ["police", "health"]
USERS = {"ann": {"claims": {"agency": "mash", "role": "analyst", "team": "MASH Team A"}}}
BROKER_CACHE, AGENT_CACHE = 8.0, 1.0


def trust(path: Path, idp: OidcProvider, cache: float, *, broker: bool = False) -> None:
    cfg = yaml.safe_load(path.read_text())
    cfg["auth"]["issuers"].append({"issuer": idp.issuer, "discovery": True,
                                   "agencies": ["mash"], "roles": ["analyst"],
                                   "jwks_cache_seconds": cache, "fetch_timeout_seconds": 1})
    if broker:  # the test provider's tokens are not certificate-bound
        cfg["auth"]["require_certificate_binding"] = False
    path.write_text(yaml.safe_dump(cfg))


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Running, OidcProvider]]:
    fed: federation.Federation = build_federation(tmp_path / "fed")
    idp = OidcProvider.start(tmp_path / "oidc", users=USERS)
    trust(fed.broker_config, idp, BROKER_CACHE, broker=True)
    for agency in AGENTS:
        trust(fed.agent_configs[agency], idp, AGENT_CACHE)
    try:
        async with Running.up(fed, AGENTS) as run:
            yield run, idp
    finally:
        idp.stop()


async def test_idp_tokens_answer_then_fail_closed_when_keys_cannot_be_had(
        setup: tuple[Running, OidcProvider]) -> None:
    run, idp = setup
    tokens = [(await asyncio.to_thread(device_tokens, idp, "ann"))["access_token"]
              for _ in range(3)]
    first = await run.analyst(tokens[0]).lookup(lookup_request())
    fetched = time.monotonic()
    answers = {a.agency_id: a for a in first.answers}
    assert set(answers) >= set(AGENTS)
    for agency in AGENTS:  # the positive control: searched, not refused
        assert answers[agency].state in (R.ANSWER_STATE_KNOWN, R.ANSWER_STATE_NOT_KNOWN), \
            answers[agency].detail
    idp.stop()
    await asyncio.sleep(AGENT_CACHE + 0.5)
    # The broker's cached keys are still in their life; the agents' are not: NOT_CHECKED.
    second = await run.analyst(tokens[1]).lookup(lookup_request())
    assert time.monotonic() - fetched < BROKER_CACHE, "too slow to test the broker's cache"
    answers = {a.agency_id: a for a in second.answers}
    for agency in AGENTS:
        assert answers[agency].state == R.ANSWER_STATE_NOT_CHECKED
        assert answers[agency].not_checked_reason == R.NOT_CHECKED_REASON_TOKEN_REJECTED
        assert "cannot be fetched and the cached ones are older than 1 s" in \
            answers[agency].detail
    await asyncio.sleep(max(0.0, BROKER_CACHE + 0.5 - (time.monotonic() - fetched)))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await run.analyst(tokens[2]).lookup(lookup_request())
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "cannot be fetched and the cached ones are older than 8 s" in \
        (refused.value.details() or "")
