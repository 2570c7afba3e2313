"""Per-analyst rate limits: nobody enumerates the population through lookups."""

from __future__ import annotations

import grpc
import pytest

from mash.broker import ratelimit
from mash.broker.ratelimit import RateLimitConfig, RateLimiter
from tests.helpers import Running, build_federation, lookup_request


def test_token_bucket() -> None:
    limiter = RateLimiter(RateLimitConfig(per_minute=60, burst=3))
    assert [limiter.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", now=0.0) == pytest.approx(1.0)
    assert limiter.take("b", now=0.0) == 0.0  # another analyst has their own bucket
    assert limiter.take("a", now=1.0) == 0.0  # one refilled after a second
    assert limiter.take("a", now=1.0) > 0


async def test_the_broker_refuses_past_the_limit_with_a_clear_status(tmp_path,
                                                                     monkeypatch) -> None:
    # The broker's buckets on a clock held still, so the wait it quotes does not depend on how
    # long the lookups took; moved by hand below.
    now = [1000.0]
    monkeypatch.setattr(ratelimit, "clock", lambda: now[0])
    fed = build_federation(tmp_path / "fed", agencies=["police"],
                           broker_overrides={"rate_limit": {"lookups_per_minute": 6,
                                                            "burst": 2}})
    run = Running(fed)
    await run.start_broker()
    await run.start_agent("police")
    try:
        analyst = run.analyst()
        await analyst.lookup(lookup_request())
        await analyst.lookup(lookup_request())
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await analyst.lookup(lookup_request())
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "at most 6 lookups a minute per analyst" in err.value.details()
        assert "try again in 10 s" in err.value.details()  # one lookup at 6 a minute
        # a colleague is not held up
        await run.analyst(token=fed.token(subject="b.analyst")).lookup(lookup_request())
        now[0] += 5  # half the wait: still refused, and told the rest
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await analyst.lookup(lookup_request())
        assert "try again in 5 s" in err.value.details()
        now[0] += 5  # the wait quoted is the wait: now one lookup goes ahead
        await analyst.lookup(lookup_request())
    finally:
        await run.stop()
