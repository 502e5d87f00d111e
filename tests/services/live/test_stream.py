"""The ingestion stream against a real Redis: atomic append, dedup, feed hook, Redis down."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from redis.asyncio import Redis

from services import partitions
from services.config import Settings
from services.errors import ApiError
from services.live import rows, stats
from services.live.accepted import Accepted, accepted_one
from services.live.attribution import Attribution
from services.live.stream import _ENQUEUE, CLICK_SLOT_BITS, EventStream, click_slot
from services.live.tables import CLICK_COLUMNS
from services.stores.clickhouse import ClickHouse
from services.stores.redisclient import create_redis
from tests.ports import free_port
from tests.services.live.conftest import PREFIX, REDIS_URL

WHEN = datetime(2026, 11, 2, 10, 30, tzinfo=UTC)


def click_row(event_id: int, workspace_id: int = 5) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(CLICK_COLUMNS, "")
    row.update(
        event_id=event_id, workspace_id=workspace_id, link_id=9, timestamp=WHEN, rule_id=0,
        condition_id=0, is_bot=0, country="DE", device="mobile",
    )  # fmt: skip
    return row


def click(event_id: int, client_id: bool = False, workspace_id: int = 5) -> Accepted:
    return accepted_one(
        "click", click_row(event_id, workspace_id), claimed=client_id, cache_field=str(event_id)
    )


def batch(*events: Accepted) -> Accepted:
    """The events as one enqueue."""
    joined = Accepted(events[0].kind)
    for e in events:
        joined.rows += e.rows
        joined.event_ids += e.event_ids
        joined.claimed += e.claimed
        joined.stats += e.stats
        joined.cache_fields += e.cache_fields
        joined.cache_values += e.cache_values
    return joined


def settings(name: str) -> Settings:
    return replace(
        Settings(), ingest_stream=f"{PREFIX}:ingest:{name}", ingest_key_prefix=f"{PREFIX}:{name}"
    )


def ingest_stream(s: Settings, workspace_id: int) -> str:
    """The ingest stream of the workspace's partition."""
    return partitions.workspace_stream(s.ingest_stream, workspace_id, s.ingest_partitions)


async def feed_ids(redis: Redis, s: Settings, workspace_id: int) -> list[int]:
    """Event ids in the workspace's live feed, oldest first."""
    entries = await redis.xrange(stats.stream_key(workspace_id, s.live_key_prefix))
    return [row[0] for _id, fields in entries for row in rows.decode_lines("click", fields[b"r"])]


def test_rows_round_trip_in_column_order() -> None:
    event = click(11)
    decoded = rows.decode("click", event.rows[0])
    at = CLICK_COLUMNS.index("timestamp")
    assert decoded[at] == int(WHEN.timestamp())
    row = click_row(11)
    assert decoded[:at] + decoded[at + 1 :] == tuple(
        row[c] for c in CLICK_COLUMNS if c != "timestamp"
    )


def test_stats_count_what_live_stats_count() -> None:
    assert click(12).stats == [("click", WHEN.timestamp(), 9, "")]


def test_rows_become_csv_records_in_column_order() -> None:
    plain = [rows.encode([1, 2, "a b", "ü,x"]), rows.encode([3, 4, "", "y"])]
    assert rows.to_csv("click", b"\n".join(plain)) == b'1,2,"a b","\xc3\xbc,x"\n3,4,"","y"\n'
    tricky = rows.encode([5, 6, 'say "hi"\\', "line\nnext\ttab"])
    assert rows.to_csv("click", tricky) == b'5,6,"say ""hi""\\","line\nnext\ttab"\n'


async def test_client_ids_are_appended_once_and_published_in_the_transaction(
    redis: Redis,
) -> None:
    published: list[list[int]] = []

    def publish(pipe: Any, workspace_id: int, kind: str, lines: bytes, counted: list[Any]) -> None:
        decoded = rows.decode_lines(kind, lines)
        assert pipe.is_transaction and kind == "click" and len(counted) == len(decoded)
        published.append([r[0] for r in decoded])
        pipe.set(f"{PREFIX}:published:{workspace_id}", len(decoded))

    s = settings("dedup")
    stream = EventStream(redis, s, publish)
    assert await stream.enqueue(5, batch(click(1, True), click(2), click(1, True))) == [
        True, True, False,
    ]  # fmt: skip
    assert await stream.enqueue(5, batch(click(1, True), click(3, True))) == [False, True]
    entries = await redis.xrange(ingest_stream(s, 5))
    assert [(e[1][b"k"], e[1][b"n"]) for e in entries] == [(b"click", b"2"), (b"click", b"1")]
    stored = rows.decode_lines("click", entries[0][1][b"r"])
    assert [r[0] for r in stored] == [1, 2]
    # The second batch's known duplicate stays out of the feed.
    assert published == [[1, 2, 1], [3]]
    assert await redis.get(f"{PREFIX}:published:5") == b"1"
    assert 0 < await redis.ttl(stream.keys.dedup(5, 1)) <= s.ingest_dedup_seconds
    day = datetime.now(UTC).strftime("%Y%m%d")
    cache = f"{s.ingest_key_prefix}:clicks:{{p5}}:5:{day}"
    assert sorted(await redis.hkeys(cache)) == [b"1", b"2", b"3"]
    assert s.click_cache_seconds < await redis.ttl(cache) <= s.click_cache_seconds + 86400


async def test_redis_down_is_unavailable() -> None:
    closed = create_redis(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.5)
    stream = EventStream(closed, settings("down"), lambda *_: None)
    with pytest.raises(ApiError) as down:
        await stream.enqueue(5, click(1))
    assert down.value.code == grpc.StatusCode.UNAVAILABLE
    assert "not accepted" in down.value.message
    await closed.aclose()


async def test_scripts_lost_by_redis_are_loaded_again(redis: Redis) -> None:
    s = settings("flushed")
    stream = EventStream(redis, s)
    assert await stream.enqueue(6, click(21)) == [True]
    await redis.script_flush()  # what a restart without persistence does to the scripts
    assert await stream.enqueue(6, click(22)) == [True]
    entries = await redis.xrange(ingest_stream(s, 6))
    assert [rows.decode_lines("click", e[1][b"r"])[0][0] for e in entries] == [21, 22]
    assert await feed_ids(redis, s, 6) == [21, 22]


async def test_scripts_redis_lost_only_in_part_run_once(redis: Redis) -> None:
    """Redis holds the ingestion script again but not the feed's (a concurrent caller loaded
    one of them first): the events are appended once and published once."""
    s = settings("partly")
    stream = EventStream(redis, s)
    assert await stream.enqueue(7, click(31)) == [True]
    await redis.script_flush()
    await redis.script_load(_ENQUEUE)
    assert await stream.enqueue(7, batch(click(32), click(33))) == [True, True]
    entries = await redis.xrange(ingest_stream(s, 7))
    assert [e[1][b"n"] for e in entries] == [b"1", b"2"]
    assert await feed_ids(redis, s, 7) == [31, 32, 33]


async def test_first_concurrent_batches_of_a_pool_run_once(redis: Redis) -> None:
    """Callers racing to load the scripts on a new pool never run a batch twice."""
    await redis.script_flush()
    fresh = create_redis(REDIS_URL)
    s = settings("racing")
    stream = EventStream(fresh, s)
    try:
        outcomes = await asyncio.gather(*(stream.enqueue(8, click(40 + n)) for n in range(30)))
    finally:
        await fresh.aclose()
    assert outcomes == [[True]] * 30
    assert await redis.xlen(ingest_stream(s, 8)) == 30
    assert sorted(await feed_ids(redis, s, 8)) == list(range(40, 70))


def attributing(
    redis: Redis, ch: ClickHouse, name: str
) -> tuple[Settings, EventStream, Attribution]:
    """Settings of its own, the stream that caches the clicks and the attribution reading them."""
    s = settings(name)
    stream = EventStream(redis, s)
    return s, stream, Attribution(redis, ch, stream.keys, s.click_cache_seconds)


async def test_clicks_with_ids_of_the_service_are_cached_by_slot(
    redis: Redis, ch: ClickHouse
) -> None:
    s, stream, attribution = attributing(redis, ch, "slots")
    boundary = 5 << CLICK_SLOT_BITS
    spanning = [boundary - 2, boundary - 1, boundary, boundary + 1]  # two slots
    assert await stream.enqueue(9, batch(*(click(i, workspace_id=9) for i in spanning)))
    lone = (7 << CLICK_SLOT_BITS) + 3
    assert await stream.enqueue(9, click(lone, workspace_id=9))
    assert await redis.keys(f"{s.ingest_key_prefix}:clicks:*") == []
    rows_key = stream.keys.click_rows(9, click_slot(boundary - 2))
    assert len(rows.decode_lines("click", await redis.get(rows_key))) == 4
    assert 0 < await redis.ttl(rows_key) <= s.click_cache_seconds
    for click_id in [*spanning, lone]:
        found = await attribution.click(9, click_id, "click_id")
        assert found["click_id"] == click_id and found["country"] == "DE"
    for unknown in (boundary + 2, boundary - 3, lone + 1, 1):
        with pytest.raises(ApiError) as missing:
            await attribution.click(9, unknown, "click_id")
        assert missing.value.code == grpc.StatusCode.NOT_FOUND
    # Another workspace does not see them.
    with pytest.raises(ApiError):
        await attribution.click(10, boundary, "click_id")


async def test_clicks_with_client_ids_or_ids_far_apart_are_cached_by_id(
    redis: Redis, ch: ClickHouse
) -> None:
    s, stream, attribution = attributing(redis, ch, "fields")
    far = [1 << CLICK_SLOT_BITS, 3 << CLICK_SLOT_BITS]
    assert await stream.enqueue(11, batch(*(click(i, workspace_id=11) for i in far)))
    assert await stream.enqueue(11, batch(click(77, True, 11), click(78, workspace_id=11)))
    assert await redis.keys(f"{s.ingest_key_prefix}:clickrows:*") == []
    for click_id in [*far, 77, 78]:
        assert (await attribution.click(11, click_id, "click_id"))["click_id"] == click_id
