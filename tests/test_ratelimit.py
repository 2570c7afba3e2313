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


def _two_brokers(tmp_path, store: str | None):
    limit = {"lookups_per_minute": 6, "burst": 3, **({"store": store} if store else {})}
    return build_federation(tmp_path / "fed", agencies=["police"], brokers=2,
                            broker_overrides={"rate_limit": limit})


async def _spread(run: Running, n: int) -> list[grpc.StatusCode]:
    """n lookups by one analyst, alternating between the two brokers."""
    codes = []
    for i in range(n):
        try:
            await run.analyst(broker=1 + i % 2).lookup(lookup_request())
            codes.append(grpc.StatusCode.OK)
        except grpc.aio.AioRpcError as exc:
            codes.append(exc.code())
    return codes


@pytest.mark.postgres
async def test_a_shared_store_limits_an_analyst_across_brokers(tmp_path) -> None:
    import uuid

    from tests.audit_support import pg_base_url

    store = f"{pg_base_url()}?schema=limits_{uuid.uuid4().hex[:12]}"
    for shared in (None, store):  # positive control first: each broker its own buckets
        run = Running(_two_brokers(tmp_path / ("shared" if shared else "own"), shared))
        await run.start_broker(1)
        await run.start_broker(2)
        await run.start_agent("police")
        try:
            codes = await _spread(run, 5)
        finally:
            await run.stop()
        if shared is None:
            assert codes == [grpc.StatusCode.OK] * 5  # 3 + 3 allowed: two separate limits
        else:
            assert codes == [grpc.StatusCode.OK] * 3 + [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2


@pytest.mark.postgres
def test_an_unreachable_shared_store_fails_closed(tmp_path) -> None:
    from mash.broker.shared_limits import RateLimitUnavailable, SharedRateLimiter

    with pytest.raises(RateLimitUnavailable, match="cannot connect"):
        SharedRateLimiter("postgresql://postgres@127.0.0.1:1/test", 6, 3, connect_timeout=2)


def test_a_store_that_is_not_postgresql_is_refused(tmp_path) -> None:
    from mash.broker import config as broker_config
    from mash.errors import ConfigError

    fed = build_federation(tmp_path / "fed", agencies=["police"], background=20,
                           broker_overrides={"rate_limit": {"store": "sqlite:///x.db"}})
    with pytest.raises(ConfigError, match="expected a PostgreSQL URL"):
        broker_config.load(fed.broker_config)


@pytest.mark.postgres
def test_a_lost_connection_refuses_then_recovers() -> None:
    import uuid

    import psycopg

    from mash.broker.shared_limits import RateLimitUnavailable, SharedRateLimiter
    from tests.audit_support import pg_base_url

    limiter = SharedRateLimiter(f"{pg_base_url()}?schema=limits_{uuid.uuid4().hex[:12]}", 6, 3)
    try:
        assert limiter.take("a") == 0.0
        assert limiter._conn is not None
        with psycopg.connect(pg_base_url(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (limiter._conn.info.backend_pid,))
        with pytest.raises(RateLimitUnavailable):
            limiter.take("a")  # fails closed: no lookup admitted
        assert [limiter.take("a") for _ in range(2)] == [0.0, 0.0]  # reconnected
        assert limiter.take("a") > 0  # and the bucket kept its count: all 3 taken
    finally:
        limiter.close()
