"""The ingestion stream gauges sampled from a real Redis: length, pending, and the flusher lag
taken from the entry ids of the oldest event not yet written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services import partitions
from tests.services.live.conftest import PREFIX, session_redis
from workers import stream_gauges

GROUP = "flushers"
MINUTE_MS = 60_000


@pytest_asyncio.fixture
async def redis() -> AsyncIterator[Redis]:
    """Client on the live tests' Redis db; this session's keys are removed afterwards."""
    async with session_redis() as client:
        yield client


async def _redis_ms(redis: Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def test_an_empty_or_missing_stream_has_no_lag(redis: Redis) -> None:
    streams = partitions.streams(f"{PREFIX}:gauges:empty", 4)
    assert await stream_gauges.sample(redis, streams, GROUP) == stream_gauges.StreamSample(0, 0, 0)


async def test_lag_is_the_age_of_the_oldest_event_pending_or_undelivered(redis: Redis) -> None:
    first, second = partitions.streams(f"{PREFIX}:gauges:lag", 2)
    now = await _redis_ms(redis)
    for stream in (first, second):
        await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    # Partition 0: an entry 10 minutes old read and not acknowledged, one 2 minutes old unread.
    await redis.xadd(first, {"n": 1}, id=f"{now - 10 * MINUTE_MS}-0")
    await redis.xadd(first, {"n": 1}, id=f"{now - 2 * MINUTE_MS}-0")
    await redis.xreadgroup(GROUP, "c1", {first: ">"}, count=1)
    # Partition 1: an entry 5 minutes old, unread.
    await redis.xadd(second, {"n": 1}, id=f"{now - 5 * MINUTE_MS}-0")
    found = await stream_gauges.sample(redis, [first, second], GROUP)
    assert (found.length, found.pending) == (3, 1)
    assert 10 * 60 <= found.lag_seconds < 11 * 60
    # Written and acknowledged: the 5-minute-old entry of partition 1 is now the oldest.
    pending = await redis.xpending(first, GROUP)
    await redis.xack(first, GROUP, pending["min"])
    found = await stream_gauges.sample(redis, [first, second], GROUP)
    assert (found.length, found.pending) == (3, 0)
    assert 5 * 60 <= found.lag_seconds < 6 * 60
    # Everything delivered and acknowledged: no lag, the entries stay until trimmed.
    read = await redis.xreadgroup(GROUP, "c1", {first: ">", second: ">"})
    for stream, entries in read:
        await redis.xack(stream, GROUP, *[entry_id for entry_id, _ in entries])
    assert await stream_gauges.sample(redis, [first, second], GROUP) == (
        stream_gauges.StreamSample(3, 0, 0.0)
    )


async def test_a_stream_without_the_group_counts_all_its_entries_as_unflushed(
    redis: Redis,
) -> None:
    (stream,) = partitions.streams(f"{PREFIX}:gauges:nogroup", 1)
    now = await _redis_ms(redis)
    await redis.xadd(stream, {"n": 1}, id=f"{now - 3 * MINUTE_MS}-0")
    found = await stream_gauges.sample(redis, [stream], GROUP)
    assert found.length == 1 and found.pending == 0 and 3 * 60 <= found.lag_seconds < 4 * 60


async def test_sampling_sets_the_gauges(redis: Redis) -> None:
    (stream,) = partitions.streams(f"{PREFIX}:gauges:task", 1)
    now = await _redis_ms(redis)
    await redis.xadd(stream, {"n": 1}, id=f"{now - 7 * MINUTE_MS}-0")
    await redis.xadd(stream, {"n": 1}, id=f"{now - 6 * MINUTE_MS}-0")
    task = asyncio.create_task(stream_gauges.keep_sampling(redis, lambda: [stream], GROUP, 0.01))
    try:
        for _ in range(200):
            if REGISTRY.get_sample_value("linkpulse_ingest_stream_length") == 2:
                break
            await asyncio.sleep(0.01)
    finally:
        await stream_gauges.stop(task)
    assert REGISTRY.get_sample_value("linkpulse_ingest_stream_length") == 2
    assert REGISTRY.get_sample_value("linkpulse_ingest_stream_pending") == 0
    assert (REGISTRY.get_sample_value("linkpulse_flusher_lag_seconds") or 0) >= 7 * 60
