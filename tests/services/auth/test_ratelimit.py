"""The rate limiter against a real Redis: a minute of requests, refill, per-credential buckets,
headers, and serving unlimited when Redis is unreachable."""

from __future__ import annotations

import asyncio
import os
import time

from redis.asyncio import Redis

from services.auth.ratelimit import RateLimiter, credential_digest
from services.stores.redisclient import create_redis
from tests.ports import free_port

REDIS_URL = os.environ.get("LINKPULSE_TEST_LIVE_REDIS_URL", "redis://127.0.0.1:6379/13")


def limiter(redis: Redis) -> RateLimiter:
    return RateLimiter(redis, prefix=f"lptest{os.getpid()}:{time.monotonic_ns()}")


async def test_a_minute_of_requests_then_429_then_refill() -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        limits = limiter(redis)
        key = credential_digest("Bearer lp_a")
        decisions = [await limits.spend(key, 120) for _ in range(120)]
        assert all(d is not None and d.allowed for d in decisions)
        assert decisions[0].headers()["x-ratelimit-limit"] == "120"
        assert [d.remaining for d in decisions[:3]] == [119, 118, 117]
        refused = await limits.spend(key, 120)
        assert refused is not None and not refused.allowed
        assert refused.headers()["retry-after"] == "1" and refused.reset_seconds >= 1
        other = await limits.spend(credential_digest("Bearer lp_b"), 120)
        assert other is not None and other.allowed  # buckets are per credential
        await asyncio.sleep(1.1)  # 120 a minute: two a second come back
        again = await limits.spend(key, 120)
        assert again is not None and again.allowed
    finally:
        await redis.aclose()


async def test_unlimited_plans_and_unreachable_redis_are_served() -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        assert await limiter(redis).spend("k", 0) is None
    finally:
        await redis.aclose()
    dead = create_redis(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.2)
    limits = RateLimiter(dead, timeout_seconds=0.2)
    began = time.monotonic()
    assert await limits.spend("k", 60) is None
    assert await limits.spend("k", 60) is None  # paused: Redis is not even tried
    assert time.monotonic() - began < 1.0
    await dead.aclose()


async def test_a_lease_takes_all_or_some_and_a_lease_of_one_is_a_spend() -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        limits = limiter(redis)
        key = credential_digest("Bearer lp_lease")
        leased = await limits.lease(key, 60, 50)
        assert leased is not None and leased[0] == 50 and leased[1].remaining == 10
        some = await limits.lease(key, 60, 50)  # only the ten left (and what refilled meanwhile)
        assert some is not None and 10 <= some[0] < 12 and some[1].remaining == 0
        refused = await limits.lease(key, 60, 50)
        assert refused is not None and refused[0] == 0 and not refused[1].allowed
        assert refused[1].headers()["retry-after"] == "1"
        spent = await limits.spend(credential_digest("Bearer lp_one"), 60)
        one = await limits.lease(credential_digest("Bearer lp_two"), 60, 1)
        assert spent is not None and one is not None and one[0] == 1
        assert one[1] == spent
    finally:
        await redis.aclose()
