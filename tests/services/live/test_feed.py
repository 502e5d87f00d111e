"""The live feed against a real Redis: publish, list backwards, follow, resume, isolation."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
import orjson
import pytest
from redis.asyncio import Redis

from services import errors, protos
from services.live import feed, stats
from services.live.feed import publishing as feed_publish
from services.live.feed.reads import READ_BATCH
from services.live.tables import TABLES
from tests.services.live.conftest import PREFIX

LiveRequest = protos.live_pb2.LiveRequest
_ids = itertools.count(1)


def event(link_id: int = 1, kind: str = "click", **fields: Any) -> dict[str, Any]:
    """An event as ingestion hands it to publish."""
    return {
        "event_id": next(_ids),
        "kind": kind,
        "link_id": link_id,
        "timestamp": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "country": "DE",
        "city": "Berlin",
        "device": "mobile",
        "browser": "Firefox",
        "os": "Android",
        "referrer": "example.com",
        "trigger": "link",
        "visitor_id": f"v{link_id}",
        "customer_id": "c1" if kind != "click" else "",
        "amount": 1250 if kind == "sale" else 0,
        "currency": "EUR" if kind == "sale" else "",
        **fields,
    }


_INTS = {"event_id", "workspace_id", "link_id", "click_id", "rule_id", "condition_id", "amount"}


def as_row(event: dict[str, Any]) -> bytes:
    """The encoded table row ingestion would publish for a feed-shaped event."""
    seconds = int(datetime.fromisoformat(event["timestamp"]).timestamp())
    values = [
        seconds if column == "timestamp" else event.get(column, 0 if column in _INTS else "")
        for column in TABLES[event["kind"]].columns
    ]
    return orjson.dumps([0 if v is None else v for v in values])


def queue_publish(
    pipe: Any, workspace_id: int, events: list[dict[str, Any]], now: float | None = None
) -> None:
    """feed.publish for events of any kinds, in order (one call per run of one kind)."""
    for kind, run in itertools.groupby(events, key=lambda e: e["kind"]):
        batch = list(run)
        stat_events: list[stats.StatEvent] = [
            (
                kind,
                datetime.fromisoformat(e["timestamp"]).timestamp(),
                e["link_id"],
                e.get("visitor_id", ""),
            )
            for e in batch
        ]
        rows = b"\n".join(as_row(e) for e in batch)
        feed.publish(pipe, workspace_id, kind, rows, stat_events, prefix=PREFIX, now=now)


async def publish(redis: Redis, workspace_id: int, events: list[dict[str, Any]]) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        queue_publish(pipe, workspace_id, events)
        await pipe.execute()


async def listed(redis: Redis, workspace_id: int, **request: Any) -> protos.live_pb2.LiveResponse:
    return await feed.list_live(redis, workspace_id, LiveRequest(**request), prefix=PREFIX)


Follow = Callable[..., AsyncGenerator[Any, None]]


@pytest.fixture(params=["direct", "hub"])
def follow(request: pytest.FixtureRequest) -> Follow:
    """subscribe() (one XREAD loop per subscriber) or FeedHub.subscribe (one per workspace)."""
    hubs: dict[int, feed.FeedHub] = {}

    def start(redis: Redis, workspace_id: int, **fields: Any) -> AsyncGenerator[Any, None]:
        message = LiveRequest(**fields)
        if request.param == "direct":
            return feed.subscribe(redis, workspace_id, message, prefix=PREFIX, block_ms=100)
        hub = hubs.setdefault(id(redis), feed.FeedHub(redis, prefix=PREFIX, block_ms=100))
        return hub.subscribe(workspace_id, message)

    return start


async def take(stream: AsyncGenerator[Any, None], count: int) -> list[Any]:
    async with asyncio.timeout(5):
        return [await anext(stream) for _ in range(count)]


async def test_publish_only_queues_commands(redis: Redis) -> None:
    pipe = redis.pipeline()
    queue_publish(pipe, 101, [event()])
    assert await redis.exists(feed.stream_key(101, PREFIX)) == 0
    await pipe.execute()
    assert await redis.xlen(feed.stream_key(101, PREFIX)) == 1
    assert feed.stream_key(101, PREFIX) == f"{PREFIX}:{{p5}}:101"  # 101 % 16 partitions


async def test_list_newest_first_with_every_field(redis: Redis) -> None:
    sale = event(7, "sale", customer_id="cus_9", amount=4999, currency="USD")
    await publish(redis, 102, [event(7), event(8), sale])
    response = await listed(redis, 102)
    assert [e.kind for e in response.events] == ["sale", "click", "click"]
    first = response.events[0]
    assert (first.event_id, first.link_id, first.customer_id) == (sale["event_id"], 7, "cus_9")
    assert (first.amount, first.currency, first.country) == (4999, "USD", "DE")
    assert first.timestamp == sale["timestamp"] and first.cursor
    assert response.next_cursor == ""


async def test_list_pages_backwards_without_gaps(redis: Redis) -> None:
    events = [event(1 + i % 3) for i in range(23)]
    for chunk in range(0, 23, 5):
        await publish(redis, 103, events[chunk : chunk + 5])
    seen: list[int] = []
    cursor = ""
    for _ in range(10):
        page = await listed(redis, 103, limit=10, cursor=cursor)
        seen += [e.event_id for e in page.events]
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == [e["event_id"] for e in reversed(events)]


async def test_list_filters_by_link_and_kind(redis: Redis) -> None:
    await publish(redis, 104, [event(1), event(2), event(1, "lead"), event(1, "sale")] * 3)
    by_link = await listed(redis, 104, link_id=1)
    assert len(by_link.events) == 9 and {e.link_id for e in by_link.events} == {1}
    leads = await listed(redis, 104, kind="lead", limit=2)
    assert [e.kind for e in leads.events] == ["lead", "lead"] and leads.next_cursor
    rest = await listed(redis, 104, kind="lead", limit=2, cursor=leads.next_cursor)
    assert [e.kind for e in rest.events] == ["lead"] and rest.next_cursor == ""
    assert len((await listed(redis, 104, link_id=2, kind="sale")).events) == 0


async def test_filter_scans_past_one_read_batch(redis: Redis) -> None:
    await publish(redis, 105, [event(9)])
    for _ in range(READ_BATCH + 10):  # entries of one event each
        await publish(redis, 105, [event(1)])
    response = await listed(redis, 105, link_id=9)
    assert [e.link_id for e in response.events] == [9]


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"kind": "visit"}, "kind"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"link_id": -1}, "link_id"),
    ],
)
async def test_invalid_requests_name_the_field(
    redis: Redis, request_fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(errors.ApiError) as raised:
        await listed(redis, 106, **request_fields)
    assert raised.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.field == field


async def test_limit_defaults_to_50(redis: Redis) -> None:
    await publish(redis, 107, [event() for _ in range(60)])
    response = await listed(redis, 107)
    assert len(response.events) == 50 and response.next_cursor == response.events[-1].cursor


async def test_subscribe_without_cursor_gets_only_new_events(redis: Redis, follow: Follow) -> None:
    await publish(redis, 108, [event(), event()])
    stream = follow(redis, 108)
    fresh = [event(3), event(4, "lead")]
    pending = asyncio.create_task(take(stream, 2))
    await asyncio.sleep(0.2)
    await publish(redis, 108, fresh)
    got = await pending
    assert [e.event_id for e in got] == [e["event_id"] for e in fresh]
    assert all(e.cursor for e in got)
    await stream.aclose()


async def test_resume_from_cursor_misses_nothing(redis: Redis, follow: Follow) -> None:
    first = [event(i) for i in range(5)]
    await publish(redis, 109, first)
    stream = follow(redis, 109)
    pending = asyncio.create_task(take(stream, 2))
    await asyncio.sleep(0.2)
    second = [event(10 + i) for i in range(6)]
    await publish(redis, 109, second[:3])
    received = await pending
    await stream.aclose()
    # the client went away after two events; more arrive while it is gone
    await publish(redis, 109, second[3:])
    resumed = follow(redis, 109, cursor=received[-1].cursor)
    rest = await take(resumed, 4)
    await resumed.aclose()
    got = [e.event_id for e in received + rest]
    assert got == [e["event_id"] for e in second]


async def test_subscribe_filters(redis: Redis, follow: Follow) -> None:
    stream = follow(redis, 110, link_id=2, kind="sale")
    pending = asyncio.create_task(take(stream, 2))
    await asyncio.sleep(0.2)
    wanted = [event(2, "sale"), event(2, "sale")]
    await publish(redis, 110, [event(2), wanted[0], event(1, "sale"), event(2, "lead"), wanted[1]])
    got = await pending
    assert [e.event_id for e in got] == [e["event_id"] for e in wanted]
    await stream.aclose()


async def test_workspaces_never_see_each_other(redis: Redis, follow: Follow) -> None:
    a, b = 111, 112
    stream_b = follow(redis, b)
    pending = asyncio.create_task(take(stream_b, 1))
    await asyncio.sleep(0.2)
    mine = event(5)
    await publish(redis, a, [event(5) for _ in range(20)])
    await publish(redis, b, [mine])
    assert [e.event_id for e in await pending] == [mine["event_id"]]
    listed_b = await listed(redis, b, limit=500)
    assert [e.event_id for e in listed_b.events] == [mine["event_id"]]
    # a cursor of workspace A's feed does not open A's stream to B
    a_cursor = (await listed(redis, a, limit=1)).events[0].cursor
    from_a = await listed(redis, b, cursor=a_cursor)
    assert {e.event_id for e in from_a.events} <= {mine["event_id"]}
    await stream_b.aclose()


async def test_cursor_older_than_the_stream_is_refused(redis: Redis, follow: Follow) -> None:
    key = feed.stream_key(113, PREFIX)
    for _ in range(5):
        await publish(redis, 113, [event()])
    oldest = (await listed(redis, 113)).events[-1].cursor
    await redis.xtrim(key, maxlen=2, approximate=False)
    with pytest.raises(errors.ApiError) as raised:
        await anext(follow(redis, 113, cursor=oldest))
    assert raised.value.code is grpc.StatusCode.OUT_OF_RANGE
    assert raised.value.field == "cursor" and "no longer holds" in raised.value.message


async def test_cancelled_subscriber_ends_cleanly(redis: Redis, follow: Follow) -> None:
    stream = follow(redis, 114)

    async def first() -> Any:
        return await anext(stream)

    task = asyncio.create_task(first())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await publish(redis, 114, [event()])  # the client still works after a cancelled XREAD
    assert len((await listed(redis, 114)).events) == 1


async def test_hub_shares_one_reader_per_workspace(redis: Redis) -> None:
    hub = feed.FeedHub(redis, prefix=PREFIX, block_ms=100)
    streams = [hub.subscribe(115, LiveRequest()) for _ in range(3)]
    streams.append(hub.subscribe(116, LiveRequest()))
    pending = [asyncio.create_task(take(s, 1)) for s in streams]
    await asyncio.sleep(0.3)
    assert hub.followed() == 2
    sent = event()
    await publish(redis, 115, [sent])
    await publish(redis, 116, [event()])
    got = await asyncio.gather(*pending)
    assert [g[0].event_id for g in got[:3]] == [sent["event_id"]] * 3
    for stream in streams:
        await stream.aclose()
    assert hub.followed() == 0


async def test_hub_subscriber_behind_its_inbox_misses_nothing(redis: Redis) -> None:
    hub = feed.FeedHub(redis, prefix=PREFIX, block_ms=100, inbox_size=5)
    lagging = hub.subscribe(117, LiveRequest())
    keeping_up = hub.subscribe(117, LiveRequest())
    first = asyncio.create_task(take(lagging, 1))
    everything = asyncio.create_task(take(keeping_up, 60))
    await asyncio.sleep(0.3)
    events = [event(i % 4) for i in range(60)]
    for chunk in range(0, 60, 3):  # 20 deliveries: the lagging inbox overflows
        await publish(redis, 117, events[chunk : chunk + 3])
        await asyncio.sleep(0.02)
    got = await first
    got += await take(lagging, 59)
    assert [e.event_id for e in got] == [e["event_id"] for e in events]
    assert [e.event_id for e in await everything] == [e["event_id"] for e in events]
    await lagging.aclose()
    await keeping_up.aclose()
    assert hub.followed() == 0


async def test_feed_keeps_about_stream_maxlen_events(
    redis: Redis, follow: Follow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_publish, "STREAM_MAXLEN", 200)
    events = [event() for _ in range(1500)]
    for chunk in range(0, 1500, 5):
        await publish(redis, 118, events[chunk : chunk + 5])
    kept: list[int] = []
    cursor = ""
    while page := await listed(redis, 118, limit=500, cursor=cursor):
        kept += [e.event_id for e in page.events]
        if not (cursor := page.next_cursor):
            break
    # trimmed by whole stream nodes (100 entries): at least 200 events, far fewer than 1500
    assert 200 <= len(kept) <= 200 + 100 * 5
    assert kept == [e["event_id"] for e in reversed(events)][: len(kept)]
    with pytest.raises(errors.ApiError) as raised:
        await anext(follow(redis, 118, cursor=page.events[-1].cursor.split("-")[0] + "-0"))
    assert raised.value.code is grpc.StatusCode.OUT_OF_RANGE


async def test_entries_of_one_event_each_go_on_with_batches(redis: Redis, follow: Follow) -> None:
    """A stream written by the version that appended an entry per event."""
    key = feed.stream_key(119, PREFIX)
    old = [event(1), event(2)]
    for e in old:
        await redis.xadd(key, {"k": "click", "r": as_row(e)})
    new = [event(3), event(4), event(5)]
    await publish(redis, 119, new)
    every = [e["event_id"] for e in old + new]
    listing = await listed(redis, 119)
    assert [e.event_id for e in listing.events] == every[::-1]
    resumed = follow(redis, 119, cursor=listing.events[-1].cursor)
    assert [e.event_id for e in await take(resumed, 4)] == every[1:]
    await resumed.aclose()


async def test_resume_reads_past_one_read_batch_of_entries(redis: Redis, follow: Follow) -> None:
    first = [event(), event(), event()]
    await publish(redis, 120, first)
    cursor = (await listed(redis, 120, limit=2)).events[1].cursor  # inside the entry
    later = [[event(), event()] for _ in range(READ_BATCH + 5)]
    for pair in later:
        await publish(redis, 120, pair)
    resumed = follow(redis, 120, cursor=cursor)
    expected = [first[2]] + [e for pair in later for e in pair]
    got = await take(resumed, len(expected))
    assert [e.event_id for e in got] == [e["event_id"] for e in expected]
    await resumed.aclose()
