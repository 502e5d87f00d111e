"""Live stats: clicks in the last minutes, active visitors, events per second, top links.

Written by ``services.live.feed.publish`` next to the workspace's stream ``<stream>``
(``lp:live:{p<partition>}:<workspace>``), in 10-second buckets ``b = epoch_seconds // 10`` of the
event's own timestamp:

- ``<stream>:clicks:<b>`` — counter of clicks (INCRBY), TTL 35 min;
- ``<stream>:visitors:<b>`` — HyperLogLog of the visitor ids of all events, TTL 7 min;
- ``<stream>:links:<b>`` — sorted set link id -> clicks (ZINCRBY), TTL 7 min;
- ``<stream>:rate:<s>`` — counter of events accepted in epoch second ``s`` (time of receipt,
  not the event's timestamp), TTL 2 min.

A window "last N minutes" is the N*6 buckets ending with the current one, so it reaches back
between N minutes and N minutes 10 seconds. Events stamped more than 35 minutes ago or in the
future (backfill, skewed clocks) are in the feed but not in these stats; events stamped before
the current 5-minute window only add to the click counters, since no later read of visitors or
links can include them.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from services import protos
from services.live import scripts
from services.live.redis_failures import reading_redis
from services.partitions import DEFAULT_PARTITIONS, tag

KEY_PREFIX = "lp:live"
BUCKET_SECONDS = 10
COUNTER_TTL_SECONDS = 35 * 60
SET_TTL_SECONDS = 7 * 60
RATE_TTL_SECONDS = 120
# Events per second are averaged over the last complete seconds.
RATE_WINDOW_SECONDS = 10
TOP_LINKS = 10
# Active visitors and top links are counted over the last RECENT_MINUTES.
RECENT_MINUTES = 5
_CLOCK_SKEW_SECONDS = 60


def stream_key(
    workspace_id: int, prefix: str = KEY_PREFIX, partitions: int = DEFAULT_PARTITIONS
) -> str:
    """Key of the workspace's event stream (`<prefix>:{pN}:<workspace>`, in the slot of the
    workspace's partition, like its ingest stream); its stats keys extend it."""
    return f"{prefix}:{tag(workspace_id, partitions)}:{workspace_id}"


def _bucket(seconds: float) -> int:
    return int(seconds // BUCKET_SECONDS)


# What the stats count of one accepted event: (kind, its own time in epoch seconds, link id,
# visitor id). A plain tuple: the compiled click path (services/live/_clickwire.c) builds them.
StatEvent = tuple[str, float, int, str]


# KEYS: the stats keys touched; ARGV[1]: JSON list of operations
# [op, key index (1-based), ttl, args...] with op incrby (amount), zincrby (member, amount,
# member, amount, ...) or pfadd (members...). Applied in one script call per batch.
_APPLY = """
for _, op in ipairs(cjson.decode(ARGV[1])) do
  local name, key = op[1], KEYS[op[2]]
  if name == 'incrby' then
    redis.call('INCRBY', key, op[4])
  elseif name == 'zincrby' then
    for i = 4, #op, 2 do redis.call('ZINCRBY', key, op[i + 1], op[i]) end
  else
    redis.call('PFADD', key, unpack(op, 4))
  end
  redis.call('EXPIRE', key, op[3])
end
return #KEYS
"""
# Members per PFADD (Lua's unpack has a bounded stack).
_PFADD_CHUNK = 1000


def record(pipe: Pipeline, stream: str, events: list[StatEvent], now: float) -> None:
    """Queue on pipe the stats updates of events accepted at now (epoch seconds)."""
    clicks: Counter[int] = Counter()
    link_clicks: dict[int, Counter[int]] = {}
    visitors: dict[int, set[str]] = {}
    oldest, latest = now - COUNTER_TTL_SECONDS, now + _CLOCK_SKEW_SECONDS
    # Visitors and top links are only read for the last RECENT_MINUTES: an event older than
    # the first bucket of the current window can never be in a window read from now on.
    first_recent = _buckets(now, RECENT_MINUTES)[0]
    for kind, at, link_id, visitor_id in events:
        if not oldest <= at <= latest:
            continue
        bucket = _bucket(min(at, now))
        if kind == "click":
            clicks[bucket] += 1
        if bucket < first_recent:
            continue
        if visitor_id:
            visitors.setdefault(bucket, set()).add(visitor_id)
        if kind == "click":
            link_clicks.setdefault(bucket, Counter())[link_id] += 1
    keys: list[str] = []
    ops: list[list[Any]] = []

    def add(op: str, key: str, ttl: int, *args: Any) -> None:
        keys.append(key)
        ops.append([op, len(keys), ttl, *args])

    for bucket, count in clicks.items():
        add("incrby", f"{stream}:clicks:{bucket}", COUNTER_TTL_SECONDS, count)
    for bucket, per_link in link_clicks.items():
        pairs = [v for link_id, n in per_link.items() for v in (str(link_id), n)]
        add("zincrby", f"{stream}:links:{bucket}", SET_TTL_SECONDS, *pairs)
    for bucket, ids in visitors.items():
        members = sorted(ids)
        for at in range(0, len(members), _PFADD_CHUNK):
            add(
                "pfadd",
                f"{stream}:visitors:{bucket}",
                SET_TTL_SECONDS,
                *members[at : at + _PFADD_CHUNK],
            )
    add("incrby", f"{stream}:rate:{int(now)}", RATE_TTL_SECONDS, len(events))
    scripts.queue(pipe, _APPLY, keys, [orjson.dumps(ops)])


def _buckets(now: float, minutes: int) -> list[int]:
    current = _bucket(now)
    return list(range(current - minutes * 60 // BUCKET_SECONDS + 1, current + 1))


async def live_stats(
    redis: Redis,
    workspace_id: int,
    *,
    prefix: str = KEY_PREFIX,
    partitions: int = DEFAULT_PARTITIONS,
    now: float | None = None,
) -> protos.live_pb2.LiveStatsResponse:
    """The workspace's clicks in the last 1, 5, 30 minutes, visitors, events/s and top links."""
    stream = stream_key(workspace_id, prefix, partitions)
    now = time.time() if now is None else now
    last_30 = _buckets(now, 30)
    last_5 = _buckets(now, RECENT_MINUTES)
    last_1 = _buckets(now, 1)
    seconds = range(int(now) - RATE_WINDOW_SECONDS, int(now))
    with reading_redis("the live stats"):
        async with redis.pipeline(transaction=False) as pipe:
            # Raw commands: redis-py's cluster pipelines refuse the mget() and pfcount() methods
            # (their keys may span slots; these share the workspace partition's).
            pipe.execute_command("MGET", *[f"{stream}:clicks:{b}" for b in last_30])
            pipe.execute_command("PFCOUNT", *[f"{stream}:visitors:{b}" for b in last_5])
            pipe.zunion([f"{stream}:links:{b}" for b in last_5], withscores=True)
            pipe.execute_command("MGET", *[f"{stream}:rate:{s}" for s in seconds])
            counts, active, links, rates = await pipe.execute()
    per_bucket = dict(zip(last_30, (int(c or 0) for c in counts), strict=True))
    clicks_5m = sum(per_bucket[b] for b in last_5)
    ranked = sorted(
        ((int(member), int(score)) for member, score in links), key=lambda r: (-r[1], r[0])
    )
    response = protos.live_pb2.LiveStatsResponse(
        clicks_last_1m=sum(per_bucket[b] for b in last_1),
        clicks_last_5m=clicks_5m,
        clicks_last_30m=sum(per_bucket.values()),
        active_visitors_5m=int(active),
        events_per_second=sum(int(r or 0) for r in rates) / RATE_WINDOW_SECONDS,
    )
    for link_id, count in ranked[:TOP_LINKS]:
        response.top_links.append(
            protos.common_pb2.BreakdownRow(
                key=str(link_id),
                label=str(link_id),
                clicks=count,
                share=count / clicks_5m if clicks_5m else 0.0,
            )
        )
    return response
