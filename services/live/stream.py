"""The durable ingestion stream: accepted events go to a Redis Stream in one atomic step.

One stream entry per accepted request (or client-stream chunk) in the stream of the workspace's
partition (`<INGEST_STREAM>:{pN}`, services.partitions), fields `k` (click, lead or sale), `w`
(workspace id), `n` (rows) and `r` (the rows, `services.live.rows` encoded, joined by newlines:
what the flusher turns into ClickHouse's CSV). A Lua script, run inside one MULTI/EXEC with the
live-feed commands (on a Redis Cluster: one pipeline to the partition's slot), sets each
client-chosen event id's dedup marker (`SET NX EX`), appends the events whose marker was new and
caches what lead and sale attribution needs. The request succeeds only when the script did.
Every key the script and the feed touch is declared and carries the partition's hash tag.

The attribution cache: clicks whose ids the service chose are appended, the batch's rows as they
are, to a string per workspace and id slot (`Keys.click_rows`: ids of about 64 ms), which a
look-up searches for the row of one id; other clicks, and leads (by customer id), are fields of
a hash per workspace and UTC day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import orjson
from redis.asyncio import Redis

from services import errors, partitions
from services.config import Settings
from services.ids import NODE_BITS, SEQUENCE_BITS
from services.live import feed, scripts
from services.live.accepted import Accepted
from services.live.redis_failures import REDIS_DOWN
from services.live.stats import StatEvent
from services.partitions import DEFAULT_PARTITIONS
from services.stores.redisclient import is_cluster
from services.telemetry import measure

log = logging.getLogger("linkpulse.live.stream")

Publish = Callable[[Any, int, str, bytes, list[StatEvent]], None]

# KEYS: the workspace partition's stream, the cache hash (KEYS[1] when none), the click rows
# string (KEYS[1] when none), then per event with a client-chosen id its dedup key (and, when
# legacy markers are honoured, its marker's name of earlier versions). All in the workspace's
# partition but the legacy markers, which are only declared on one Redis.
# ARGV: dedup ttl, kind, workspace, '1' when caching to the hash, its EXPIREAT, the rows (one a
# line), their number, the cache fields (a JSON array, one per row, or ''), the cache values
# (a JSON array, or '' when each row's cached value is the row itself), '1' when appending to
# the click rows string, its TTL, '1' when legacy markers are declared, then per event with a
# client-chosen id its 1-based position.
# Returns the positions of the duplicates (not appended).
_ENQUEUE = (
    scripts.SPLIT_LINES
    + """
local stream, hash, click_rows = KEYS[1], KEYS[2], KEYS[3]
local dedup_ttl, kind, workspace = ARGV[1], ARGV[2], ARGV[3]
local caching_to, expire_at = ARGV[4], ARGV[5]
local rows, total, fields, values = ARGV[6], tonumber(ARGV[7]), ARGV[8], ARGV[9]
local appending, click_rows_ttl, legacy = ARGV[10] == '1', ARGV[11], ARGV[12] == '1'
local dups, dup = {}, {}
local key, per = 4, 1
if legacy then per = 2 end
for i = 13, #ARGV do
  local taken = legacy and redis.call('EXISTS', KEYS[key + 1]) == 1
  if taken or not redis.call('SET', KEYS[key], '1', 'NX', 'EX', dedup_ttl) then
    local at = tonumber(ARGV[i])
    dup[at] = true
    dups[#dups + 1] = at
  end
  key = key + per
end
local count = total - #dups
local caching = caching_to == '1' and fields ~= '' and count > 0
local lines = nil
if #dups > 0 or (caching and values == '') then lines = split_lines(rows) end
if #dups > 0 then
  local kept = {}
  for at, line in ipairs(lines) do
    if not dup[at] then kept[#kept + 1] = line end
  end
  rows = table.concat(kept, '\\n')
end
if count > 0 then
  redis.call('XADD', stream, '*', 'k', kind, 'w', workspace, 'n', count, 'r', rows)
  if appending then
    redis.call('APPEND', click_rows, rows)
    redis.call('APPEND', click_rows, '\\n')
    redis.call('EXPIRE', click_rows, click_rows_ttl)
  end
end
if caching then
  local names, cached = cjson.decode(fields), lines
  if values ~= '' then cached = cjson.decode(values) end
  local batch = {}
  for at, name in ipairs(names) do
    if not dup[at] then
      batch[#batch + 1] = name
      batch[#batch + 1] = cached[at]
      if #batch >= 2000 then
        redis.call('HSET', hash, unpack(batch))
        batch = {}
      end
    end
  end
  if #batch > 0 then redis.call('HSET', hash, unpack(batch)) end
  redis.call('EXPIREAT', hash, expire_at)
end
return dups
"""
)

# Redis failures meaning "the event store cannot take this now".


# Click ids per slot of the attribution cache: the ids the service chose in 64 ms (`services.ids`:
# node and sequence bits below the milliseconds); a batch is cached by slot when its ids span
# at most two slots, so that the slot of an id or the one before holds it.
CLICK_SLOT_BITS = NODE_BITS + SEQUENCE_BITS + 6


def click_slot(event_id: int) -> int:
    """The attribution cache slot of a click id."""
    return event_id >> CLICK_SLOT_BITS


def _day(day: date) -> str:
    return day.strftime("%Y%m%d")


@dataclass(frozen=True)
class Keys:
    """Names of the ingestion keys under one prefix, each in its workspace's partition."""

    prefix: str
    partitions: int = DEFAULT_PARTITIONS

    def _tag(self, workspace_id: int) -> str:
        return partitions.tag(workspace_id, self.partitions)

    def dedup(self, workspace_id: int, event_id: int) -> str:
        """Marker of a client event id accepted in a workspace."""
        return f"{self.prefix}:dedup:{self._tag(workspace_id)}:{workspace_id}:{event_id}"

    def legacy_dedup(self, workspace_id: int, event_id: int) -> str:
        """The marker's name before partitions (still honoured on one Redis within its TTL)."""
        return f"{self.prefix}:dedup:{workspace_id}:{event_id}"

    def clicks(self, workspace_id: int, day: date) -> str:
        """Hash of the clicks accepted on a UTC day: click id -> cached dimensions."""
        return f"{self.prefix}:clicks:{self._tag(workspace_id)}:{workspace_id}:{_day(day)}"

    def click_rows(self, workspace_id: int, slot: int) -> str:
        """String of the rows of batches of clicks whose first id is in slot, one a line."""
        return f"{self.prefix}:clickrows:{self._tag(workspace_id)}:{workspace_id}:{slot}"

    def customers(self, workspace_id: int, day: date) -> str:
        """Hash of the leads accepted on a UTC day: customer id -> their click's dimensions."""
        return f"{self.prefix}:customers:{self._tag(workspace_id)}:{workspace_id}:{_day(day)}"


def cache_days(now: datetime, cache_seconds: int) -> list[date]:
    """UTC days whose cache hashes may still exist, newest first."""
    today = now.astimezone(UTC).date()
    return [today - timedelta(days=n) for n in range(cache_seconds // 86400 + 2)]


def cache_expiry(now: datetime, cache_seconds: int) -> int:
    """EXPIREAT of the hashes of now's day: cache_seconds after that day ends."""
    today = now.astimezone(UTC).date()
    end = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
    return int(end.timestamp()) + cache_seconds


class EventStream:
    """Appends accepted events to the ingestion stream, at most once per client event id."""

    def __init__(self, redis: Redis, settings: Settings, publish: Publish | None = None) -> None:
        self.redis = redis
        self.stream = settings.ingest_stream
        self.partitions = settings.ingest_partitions
        self.keys = Keys(settings.ingest_key_prefix, settings.ingest_partitions)
        # Markers of earlier versions live in other slots: honoured on one Redis only (a Redis
        # Cluster is a new deployment, it holds none).
        self.legacy_dedup = not is_cluster(redis)
        self.dedup_seconds = settings.ingest_dedup_seconds
        self.cache_seconds = settings.click_cache_seconds
        self.publish = publish or partial(
            feed.publish, prefix=settings.live_key_prefix, partitions=settings.ingest_partitions
        )

    def stream_of(self, workspace_id: int) -> str:
        """The ingest stream of the workspace's partition."""
        return partitions.workspace_stream(self.stream, workspace_id, self.partitions)

    async def _known_duplicates(self, workspace_id: int, events: Accepted) -> set[int]:
        """Positions of events whose client-chosen id is already taken (advisory)."""
        claimed = [at for at, mine in enumerate(events.claimed) if mine]
        if not claimed:
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for at in claimed:
                pipe.exists(self.keys.dedup(workspace_id, events.event_ids[at]))
                if self.legacy_dedup:
                    pipe.exists(self.keys.legacy_dedup(workspace_id, events.event_ids[at]))
            found = await pipe.execute()
        per = 2 if self.legacy_dedup else 1
        hits = [any(found[n * per : (n + 1) * per]) for n in range(len(claimed))]
        return {at for at, hit in zip(claimed, hits, strict=True) if hit}

    def _call(
        self, workspace_id: int, events: Accepted, joined: bytes, now: datetime
    ) -> tuple[list[str], list[Any]]:
        """The keys and arguments of the enqueue script for events."""
        stream = self.stream_of(workspace_id)
        hash_key = click_rows = ""
        if events.kind == "click" and events.event_ids and not any(events.claimed):
            first, last = min(events.event_ids), max(events.event_ids)
            if click_slot(last) - click_slot(first) <= 1:
                click_rows = self.keys.click_rows(workspace_id, click_slot(first))
        if events.kind == "click" and not click_rows:
            hash_key = self.keys.clicks(workspace_id, now.date())
        elif events.kind == "lead":
            hash_key = self.keys.customers(workspace_id, now.date())
        fields = values = b""
        if hash_key and events.cache_fields:
            fields = orjson.dumps(events.cache_fields)
            if events.cache_values:
                values = orjson.dumps([v.decode() for v in events.cache_values])
        keys = [stream, hash_key or stream, click_rows or stream]
        args: list[Any] = [
            self.dedup_seconds, events.kind, workspace_id, "1" if hash_key else "",
            cache_expiry(now, self.cache_seconds), joined, len(events), fields, values,
            "1" if click_rows else "", self.cache_seconds, "1" if self.legacy_dedup else "",
        ]  # fmt: skip
        for at, (event_id, mine) in enumerate(zip(events.event_ids, events.claimed, strict=True)):
            if mine:
                keys.append(self.keys.dedup(workspace_id, event_id))
                if self.legacy_dedup:
                    keys.append(self.keys.legacy_dedup(workspace_id, event_id))
                args.append(at + 1)
        return keys, args

    async def enqueue(self, workspace_id: int, events: Accepted) -> list[bool]:
        """Append the events atomically; per event True if appended, False if a duplicate.
        Raises UNAVAILABLE when Redis cannot take them: then none was appended."""
        joined = b"\n".join(events.rows)
        keys, args = self._call(workspace_id, events, joined, datetime.now(UTC))
        try:
            # The feed check is advisory (two racing duplicates may both reach the feed);
            # the script's SET NX decides what is counted.
            known = await self._known_duplicates(workspace_id, events)
            fresh, feed_rows = events, joined
            if known:
                fresh = events.subset([at for at in range(len(events)) if at not in known])
                feed_rows = b"\n".join(fresh.rows)
            async with scripts.pipeline(self.redis, transaction=True) as pipe:
                scripts.queue(pipe, _ENQUEUE, keys, args)
                if fresh.rows:
                    self.publish(pipe, workspace_id, events.kind, feed_rows, fresh.stats)
                results = await scripts.execute(pipe)
        except REDIS_DOWN as exc:
            raise errors.unavailable(
                f"the event store (Redis) is unreachable; events were not accepted: {exc}"
            ) from exc
        outcome = results[0]
        if isinstance(outcome, Exception):
            raise errors.unavailable(f"the event store refused the events: {outcome}")
        for failed in results[1:]:
            if isinstance(failed, Exception):
                log.warning("live feed publish failed: %s", failed)
        duplicates = {int(at) for at in outcome}
        appended = [at not in duplicates for at in range(1, len(events) + 1)]
        measure.ingested(events.kind, appended)
        return appended
