"""The flusher in-process against real Redis and ClickHouse: exactly once across a crash, trim."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest_asyncio
from redis.asyncio import Redis

from services.config import Settings
from services.live.accepted import Accepted, accepted_one
from services.live.stream import EventStream
from services.stores.clickhouse import ClickHouse
from tests.services.live.conftest import PREFIX, session_redis
from tests.services.live.test_stream import batch, click, click_row
from workers.flusher import Flusher, stream_floor

WORKSPACE = 900_000 + os.getpid() % 90_000


@pytest_asyncio.fixture
async def redis() -> AsyncIterator[Redis]:
    """Client on the live tests' Redis db; this session's keys are removed afterwards."""
    async with session_redis() as client:
        yield client


def settings(name: str, **changes: object) -> Settings:
    return replace(
        Settings(),
        ingest_stream=f"{PREFIX}:ingest:{name}",
        ingest_key_prefix=f"{PREFIX}:{name}",
        **{"flusher_max_wait_ms": 10, **changes},  # type: ignore[arg-type]
    )


def test_stream_floor_keeps_what_any_group_still_needs() -> None:
    assert stream_floor([]) is None
    assert stream_floor([("9-0", None), ("7-3", None)]) == "7-3"
    assert stream_floor([("9-0", "2-1"), ("7-3", None)]) == "2-1"
    assert stream_floor([("10-0", None), ("9-5", None)]) == "9-5"


async def _stored(ch: ClickHouse, workspace_id: int) -> int:
    rows = await ch.fetch(
        "SELECT count() FROM clicks WHERE workspace_id = %(w)s", {"w": workspace_id}
    )
    return int(rows[0][0])


def _clicks(workspace_id: int, first: int, n: int) -> Accepted:
    return batch(*(click(first + i, workspace_id=workspace_id) for i in range(n)))


async def test_a_batch_inserted_but_not_acknowledged_is_not_counted_twice(
    redis: Redis, ch: ClickHouse
) -> None:
    s = settings("crash", flusher_batch_size=10, flusher_claim_idle_ms=1)
    workspace = WORKSPACE
    stream = EventStream(redis, s, lambda *_: None)
    for first in (1, 11, 21):
        await stream.enqueue(workspace, _clicks(workspace, first, 10))
    crashed = Flusher(redis, ch, s, consumer="a")
    await crashed.ensure_group()
    batch = await crashed.next_batch()
    assert batch.events >= 10 and not batch.recheck
    await crashed._insert(batch)  # then "crashes" before XACK

    survivor = Flusher(redis, ch, s, consumer="b")
    first = await survivor.next_batch()
    assert [e.id for e in first.entries] == [e.id for e in batch.entries] and first.recheck
    assert await survivor.write(first) == 0  # all were stored already
    while await survivor.step():
        pass
    assert await _stored(ch, workspace) == 30
    assert (await redis.xpending(stream.stream_of(workspace), s.flusher_group))["pending"] == 0


async def test_trim_drops_only_acknowledged_entries(redis: Redis, ch: ClickHouse) -> None:
    s = settings("trim", flusher_batch_size=4)
    workspace = WORKSPACE + 1
    stream = EventStream(redis, s, lambda *_: None)
    flusher = Flusher(redis, ch, s, consumer="t")
    await flusher.ensure_group()
    for first in range(1, 5):  # four entries of one event each
        await stream.enqueue(workspace, _clicks(workspace, first, 1))
    await flusher.write(await flusher.next_batch())  # acknowledged
    for first in range(5, 9):
        await stream.enqueue(workspace, _clicks(workspace, first, 1))
    unacked = await flusher.next_batch()  # read, pending
    assert unacked.events == 4
    for first in range(100, 103):  # three not read yet
        await stream.enqueue(workspace, _clicks(workspace, first, 1))
    await flusher.trim()
    left = [i.decode() for i, _ in await redis.xrange(stream.stream_of(workspace))]
    assert left[:4] == [e.id for e in unacked.entries] and len(left) == 7
    await flusher.write(unacked)
    while await flusher.step():
        pass
    await flusher.trim()
    assert await redis.xlen(stream.stream_of(workspace)) <= 1  # at most the last delivered entry
    assert await _stored(ch, workspace) == 11


async def test_any_text_reaches_clickhouse_exactly(redis: Redis, ch: ClickHouse) -> None:
    s = settings("text", flusher_batch_size=100)
    workspace = WORKSPACE + 2
    texts = [
        "plain",
        'say "hi", then leave',
        "back\\slash",
        "two\nlines\tand\rtab",
        "Zürich 東京",
        "",
    ]
    events = []
    for n, text in enumerate(texts, start=1):
        row = click_row(n, workspace)
        row.update(city=text, region=text[::-1])
        events.append(accepted_one("click", row, claimed=False, cache_field=str(n)))
    stream = EventStream(redis, s, lambda *_: None)
    await stream.enqueue(workspace, batch(*events[:2]))  # nothing to escape: the fast path
    await stream.enqueue(workspace, batch(*events[2:]))
    flusher = Flusher(redis, ch, s, consumer="x")
    await flusher.ensure_group()
    while await flusher.step():
        pass
    stored = await ch.fetch(
        "SELECT event_id, city, region FROM clicks WHERE workspace_id = %(w)s ORDER BY event_id",
        {"w": workspace},
    )
    assert stored == [(n, t, t[::-1]) for n, t in enumerate(texts, start=1)]


async def test_a_batch_of_a_tenth_of_the_size_does_not_wait_for_more(
    redis: Redis, ch: ClickHouse
) -> None:
    s = settings("linger", flusher_batch_size=100, flusher_max_wait_ms=60_000)
    stream = EventStream(redis, s, lambda *_: None)
    flusher = Flusher(redis, ch, s, consumer="a")
    await flusher.ensure_group()
    for first in (1, 11):
        await stream.enqueue(WORKSPACE, _clicks(WORKSPACE, first, 10))
    async with asyncio.timeout(10):  # not the minute of max_wait: nothing more is coming
        batch = await flusher.next_batch()
    assert batch.events == 20


async def test_overlapped_writes_store_everything_once(redis: Redis, ch: ClickHouse) -> None:
    s = settings("overlap", flusher_batch_size=20, flusher_inserts=3)
    workspace = WORKSPACE + 3
    stream = EventStream(redis, s, lambda *_: None)
    for first in range(1, 400, 10):
        await stream.enqueue(workspace, _clicks(workspace, first, 10))
    flusher = Flusher(redis, ch, s, consumer="o")
    running = asyncio.create_task(flusher.run())

    async def stored(count: int) -> None:
        for _ in range(1200):
            if flusher.flushed >= count:
                return
            await asyncio.sleep(0.05)

    try:
        await stored(400)
        for first in range(401, 600, 10):  # more while it runs
            await stream.enqueue(workspace, _clicks(workspace, first, 10))
        await stored(600)
    finally:
        flusher.stop.set()
        await running
    assert await _stored(ch, workspace) == 600
    pending = await redis.xpending(stream.stream_of(workspace), s.flusher_group)
    assert pending["pending"] == 0
