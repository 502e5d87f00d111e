"""Upgrade with events in flight: entries of the single stream of earlier versions (some read and
never acknowledged by an old flusher) reach ClickHouse exactly once, then it is no longer read."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest_asyncio
from redis.asyncio import Redis

from services.live.stream import EventStream
from services.stores.clickhouse import ClickHouse
from tests.ingest_streams import is_drained
from tests.services.live.conftest import session_redis
from tests.workers.test_flusher import _clicks, _stored, settings
from workers.flusher import Flusher

WORKSPACE = 800_000 + os.getpid() % 90_000


@pytest_asyncio.fixture
async def redis() -> AsyncIterator[Redis]:
    """Client on the live tests' Redis db; this session's keys are removed afterwards."""
    async with session_redis() as client:
        yield client


async def test_the_legacy_stream_is_drained_exactly_once(redis: Redis, ch: ClickHouse) -> None:
    s = settings("legacy", flusher_batch_size=10, flusher_claim_idle_ms=1)
    legacy = s.ingest_stream
    # What the old code left: entries in the one stream, two read by a flusher that died.
    await redis.xgroup_create(legacy, s.flusher_group, id="0", mkstream=True)
    for first in range(1, 50, 10):
        events = _clicks(WORKSPACE, first, 10)
        fields = {"k": "click", "w": WORKSPACE, "n": len(events), "r": b"\n".join(events.rows)}
        await redis.xadd(legacy, fields)  # type: ignore[arg-type]
    await redis.xreadgroup(s.flusher_group, "old-flusher", {legacy: ">"}, count=2)
    # New events arrive in the partition stream meanwhile.
    await EventStream(redis, s, lambda *_: None).enqueue(WORKSPACE, _clicks(WORKSPACE, 100, 10))

    flusher = Flusher(redis, ch, s, consumer="new")
    await flusher.ensure_group()
    assert legacy in flusher.reading
    while await flusher.step():
        pass
    await flusher.trim()
    assert await _stored(ch, WORKSPACE) == 60
    assert legacy not in flusher.reading
    assert await is_drained(redis, s)
    # An old live process still appending there (a rolling upgrade) is picked up again.
    events = _clicks(WORKSPACE, 200, 5)
    await redis.xadd(legacy, {"k": "click", "w": WORKSPACE, "n": 5, "r": b"\n".join(events.rows)})
    await flusher.trim()
    assert legacy in flusher.reading
    while await flusher.step():
        pass
    assert await _stored(ch, WORKSPACE) == 65
