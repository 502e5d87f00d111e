"""Live stats: clicks in the last minutes, active visitors, events per second, top links.

Written by ``services.live.feed.publish`` next to the workspace's stream ``<stream>``
(``lp:live:{<workspace>}``), in 10-second buckets ``b = epoch_seconds // 10`` of the
event's own timestamp:

- ``<stream>:clicks:<b>`` — counter of clicks (INCRBY), TTL 35 min;
- ``<stream>:visitors:<b>`` — HyperLogLog of the visitor ids of all events, TTL 7 min;
- ``<stream>:links:<b>`` — sorted set link id -> clicks (ZINCRBY), TTL 7 min;
- ``<stream>:rate:<s>`` — counter of events accepted in epoch second ``s`` (time of receipt,
  not the event's timestamp), TTL 2 min.

A window "last N minutes" is the N*6 buckets ending with the current one, so it reaches back
between N minutes and N minutes 10 seconds. Events stamped more than 35 minutes ago or in the
future (backfill, skewed clocks) are in the feed but not in these stats.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from services import pb

KEY_PREFIX = "lp:live"
BUCKET_SECONDS = 10
COUNTER_TTL_SECONDS = 35 * 60
SET_TTL_SECONDS = 7 * 60
RATE_TTL_SECONDS = 120
# Events per second are averaged over the last complete seconds.
RATE_WINDOW_SECONDS = 10
TOP_LINKS = 10
_CLOCK_SKEW_SECONDS = 60


def stream_key(workspace_id: int, prefix: str = KEY_PREFIX) -> str:
    """Key of the workspace's event stream; its stats keys extend it."""
    return f"{prefix}:{{{workspace_id}}}"


def _bucket(seconds: float) -> int:
    return int(seconds // BUCKET_SECONDS)


def _event_seconds(event: dict[str, Any], now: float) -> float:
    stamp = event.get("timestamp")
    if not stamp:
        return now
    try:
        parsed = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return now
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def record(pipe: Pipeline, stream: str, events: list[dict[str, Any]], now: float) -> None:
    """Queue on pipe the stats updates of events accepted at now (epoch seconds)."""
    clicks: Counter[int] = Counter()
    link_clicks: dict[int, Counter[int]] = {}
    visitors: dict[int, set[str]] = {}
    oldest = now - COUNTER_TTL_SECONDS
    for event in events:
        at = _event_seconds(event, now)
        if not oldest <= at <= now + _CLOCK_SKEW_SECONDS:
            continue
        bucket = _bucket(min(at, now))
        if event.get("visitor_id"):
            visitors.setdefault(bucket, set()).add(str(event["visitor_id"]))
        if event.get("kind", "click") == "click":
            clicks[bucket] += 1
            link_clicks.setdefault(bucket, Counter())[int(event.get("link_id") or 0)] += 1
    for bucket, count in clicks.items():
        key = f"{stream}:clicks:{bucket}"
        pipe.incrby(key, count)
        pipe.expire(key, COUNTER_TTL_SECONDS)
    for bucket, per_link in link_clicks.items():
        key = f"{stream}:links:{bucket}"
        for link_id, count in per_link.items():
            pipe.zincrby(key, count, str(link_id))
        pipe.expire(key, SET_TTL_SECONDS)
    for bucket, ids in visitors.items():
        key = f"{stream}:visitors:{bucket}"
        pipe.pfadd(key, *ids)
        pipe.expire(key, SET_TTL_SECONDS)
    rate = f"{stream}:rate:{int(now)}"
    pipe.incrby(rate, len(events))
    pipe.expire(rate, RATE_TTL_SECONDS)


def _buckets(now: float, minutes: int) -> list[int]:
    current = _bucket(now)
    return list(range(current - minutes * 60 // BUCKET_SECONDS + 1, current + 1))


async def live_stats(
    redis: Redis, workspace_id: int, *, prefix: str = KEY_PREFIX, now: float | None = None
) -> pb.live_pb2.LiveStatsResponse:
    """The workspace's clicks in the last 1, 5, 30 minutes, visitors, events/s and top links."""
    stream = stream_key(workspace_id, prefix)
    now = time.time() if now is None else now
    last_30 = _buckets(now, 30)
    last_5 = _buckets(now, 5)
    last_1 = _buckets(now, 1)
    seconds = range(int(now) - RATE_WINDOW_SECONDS, int(now))
    async with redis.pipeline(transaction=False) as pipe:
        pipe.mget([f"{stream}:clicks:{b}" for b in last_30])
        pipe.pfcount(*[f"{stream}:visitors:{b}" for b in last_5])
        pipe.zunion([f"{stream}:links:{b}" for b in last_5], withscores=True)
        pipe.mget([f"{stream}:rate:{s}" for s in seconds])
        counts, active, links, rates = await pipe.execute()
    per_bucket = dict(zip(last_30, (int(c or 0) for c in counts), strict=True))
    clicks_5m = sum(per_bucket[b] for b in last_5)
    ranked = sorted(
        ((int(member), int(score)) for member, score in links), key=lambda r: (-r[1], r[0])
    )
    response = pb.live_pb2.LiveStatsResponse(
        clicks_last_1m=sum(per_bucket[b] for b in last_1),
        clicks_last_5m=clicks_5m,
        clicks_last_30m=sum(per_bucket.values()),
        active_visitors_5m=int(active),
        events_per_second=sum(int(r or 0) for r in rates) / RATE_WINDOW_SECONDS,
    )
    for link_id, count in ranked[:TOP_LINKS]:
        response.top_links.append(
            pb.common_pb2.BreakdownRow(
                key=str(link_id),
                label=str(link_id),
                clicks=count,
                share=count / clicks_5m if clicks_5m else 0.0,
            )
        )
    return response
