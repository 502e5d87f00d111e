"""Live stats against a real Redis: click windows, active visitors, events per second, top links."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from services.live import stats
from tests.services.live.conftest import PREFIX
from tests.services.live.test_feed import event, queue_publish

NOW = 1_800_000_005.0  # 5 s into a 10-second bucket


def at(seconds_ago: float, link_id: int = 1, kind: str = "click", **fields: Any) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(NOW - seconds_ago, UTC).isoformat()
    return event(link_id, kind, timestamp=stamp, **fields)


async def publish(
    redis: Redis, workspace_id: int, events: list[dict[str, Any]], now: float
) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        queue_publish(pipe, workspace_id, events, now)
        await pipe.execute()


async def read(redis: Redis, workspace_id: int, now: float = NOW) -> Any:
    return await stats.live_stats(redis, workspace_id, prefix=PREFIX, now=now)


async def test_click_windows(redis: Redis) -> None:
    events = (
        [at(3) for _ in range(2)]  # last minute
        + [at(120) for _ in range(3)]  # last 5 minutes
        + [at(20 * 60) for _ in range(4)]  # last 30 minutes
        + [at(40 * 60)]  # too old for any window
        + [at(3, kind="lead"), at(3, kind="sale")]  # not clicks
    )
    await publish(redis, 201, events, NOW)
    result = await read(redis, 201)
    assert (result.clicks_last_1m, result.clicks_last_5m, result.clicks_last_30m) == (2, 5, 9)


async def test_windows_slide_with_time(redis: Redis) -> None:
    await publish(redis, 202, [at(0) for _ in range(3)], NOW)
    later = await read(redis, 202, now=NOW + 90)
    assert (later.clicks_last_1m, later.clicks_last_5m, later.clicks_last_30m) == (0, 3, 3)
    much_later = await read(redis, 202, now=NOW + 31 * 60)
    assert much_later.clicks_last_30m == 0 and much_later.active_visitors_5m == 0


async def test_active_visitors_counts_distinct_ids_over_five_minutes(redis: Redis) -> None:
    events = [at(s, visitor_id=f"v{i % 40}") for i, s in enumerate(range(0, 280, 2))]
    events += [at(10, kind="lead", visitor_id="lead-only")]
    events += [at(400, visitor_id="too-old")]
    await publish(redis, 203, events, NOW)
    assert (await read(redis, 203)).active_visitors_5m == 41


async def test_events_per_second_by_time_of_receipt(redis: Redis) -> None:
    for second in range(10):
        # backfilled timestamps still count as accepted now
        old = [at(3600, kind="click") for _ in range(5)]
        await publish(redis, 204, old, NOW - 10 + second)
    await publish(redis, 204, [at(0)] * 7, NOW)  # the current, incomplete second is left out
    result = await read(redis, 204)
    assert result.events_per_second == 5.0
    assert result.clicks_last_30m == 7


async def test_top_links_ranked_with_shares(redis: Redis) -> None:
    events = [at(10, link_id=7) for _ in range(6)] + [at(100, link_id=3) for _ in range(3)]
    events += [at(200, link_id=9), at(10, link_id=9, kind="sale"), at(600, link_id=4)]
    await publish(redis, 205, events, NOW)
    result = await read(redis, 205)
    assert [(r.key, r.label, r.clicks) for r in result.top_links] == [
        ("7", "7", 6),
        ("3", "3", 3),
        ("9", "9", 1),
    ]
    assert abs(result.top_links[0].share - 0.6) < 1e-9


async def test_stats_are_per_workspace_and_expire(redis: Redis) -> None:
    await publish(redis, 206, [at(1) for _ in range(4)], NOW)
    assert (await read(redis, 207)).clicks_last_30m == 0
    key = f"{stats.stream_key(206, PREFIX)}:clicks:{int(NOW - 1) // stats.BUCKET_SECONDS}"
    assert 0 < await redis.ttl(key) <= stats.COUNTER_TTL_SECONDS


async def test_empty_workspace(redis: Redis) -> None:
    result = await read(redis, 208)
    assert result.clicks_last_30m == 0 and not result.top_links
    assert result.events_per_second == 0.0
