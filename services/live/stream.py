"""The durable ingestion stream: accepted events go to a Redis Stream in one atomic step.

One stream entry per accepted request (or client-stream chunk), fields `k` (click, lead or
sale), `w` (workspace id), `n` (rows) and `r` (the ClickHouse rows as JSON lines, timestamps in
epoch seconds). A Lua script, run inside one MULTI/EXEC with the live-feed commands, sets each
client-chosen event id's dedup marker (`SET NX EX`), appends the events whose marker was new
and caches what lead and sale attribution needs (a hash per workspace and UTC day). The request
succeeds only when the transaction did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import orjson
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from services import errors
from services.config import Settings
from services.live import feed, scripts
from services.live.stats import StatEvent
from services.live.tables import TABLES

log = logging.getLogger("linkpulse.live.stream")

Publish = Callable[[Any, int, str, bytes, list[StatEvent]], None]

# ARGV: dedup ttl, kind, workspace, cache hash ('' = none), its EXPIREAT, the rows (JSON
# lines), the cache fields (a JSON array, one per row, or ''), the cache values (a JSON array,
# or '' when each row's cached value is the row itself), then for each event with a
# client-chosen id: its 1-based position and its dedup key.
# Returns the positions of the duplicates (not appended).
_ENQUEUE = """
local stream = KEYS[1]
local dedup_ttl, kind, workspace, hash, expire_at = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local rows, fields, values = ARGV[6], ARGV[7], ARGV[8]
local dups, dup = {}, {}
for i = 9, #ARGV, 2 do
  if not redis.call('SET', ARGV[i + 1], '1', 'NX', 'EX', dedup_ttl) then
    local at = tonumber(ARGV[i])
    dup[at] = true
    dups[#dups + 1] = at
  end
end
local lines = {}
for line in string.gmatch(rows, '[^\\n]+') do lines[#lines + 1] = line end
local count = #lines - #dups
if #dups > 0 then
  local kept = {}
  for at, line in ipairs(lines) do
    if not dup[at] then kept[#kept + 1] = line end
  end
  rows = table.concat(kept, '\\n')
end
if count > 0 then
  redis.call('XADD', stream, '*', 'k', kind, 'w', workspace, 'n', count, 'r', rows)
end
if hash ~= '' and fields ~= '' and count > 0 then
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

# Redis failures meaning "the event store cannot take this now".
REDIS_DOWN = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


def _day(day: date) -> str:
    return day.strftime("%Y%m%d")


@dataclass(frozen=True)
class Keys:
    """Names of the ingestion keys under one prefix."""

    prefix: str

    def dedup(self, workspace_id: int, event_id: int) -> str:
        """Marker of a client event id accepted in a workspace."""
        return f"{self.prefix}:dedup:{workspace_id}:{event_id}"

    def clicks(self, workspace_id: int, day: date) -> str:
        """Hash of the clicks accepted on a UTC day: click id -> cached dimensions."""
        return f"{self.prefix}:clicks:{workspace_id}:{_day(day)}"

    def customers(self, workspace_id: int, day: date) -> str:
        """Hash of the leads accepted on a UTC day: customer id -> their click's dimensions."""
        return f"{self.prefix}:customers:{workspace_id}:{_day(day)}"


def cache_days(now: datetime, cache_seconds: int) -> list[date]:
    """UTC days whose cache hashes may still exist, newest first."""
    today = now.astimezone(UTC).date()
    return [today - timedelta(days=n) for n in range(cache_seconds // 86400 + 2)]


def cache_expiry(now: datetime, cache_seconds: int) -> int:
    """EXPIREAT of the hashes of now's day: cache_seconds after that day ends."""
    today = now.astimezone(UTC).date()
    end = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
    return int(end.timestamp()) + cache_seconds


@dataclass(slots=True)
class Accepted:
    """One validated event ready to enqueue: its kind, row (column -> value) and cache entry."""

    kind: str
    row: dict[str, Any]
    # The client chose the id: a second event with it is a duplicate.
    client_id: bool = False
    # Field and value in the day's attribution hash (clicks: click id; leads: customer id);
    # no value: the encoded row itself (what a click caches).
    cache_field: str = ""
    cache_value: bytes | None = None

    @property
    def event_id(self) -> int:
        """The event's id."""
        return int(self.row["event_id"])


def encode_row(kind: str, row: dict[str, Any]) -> bytes:
    """JSON array of a row's values in the kind's column order, the timestamp in epoch seconds."""
    values = [row[c] for c in TABLES[kind].columns]
    at = TABLES[kind].timestamp_at
    values[at] = int(values[at].timestamp())
    return orjson.dumps(values)


def decode_row(kind: str, data: bytes | str) -> tuple[Any, ...]:
    """The ClickHouse row (the kind's column order, timestamp in epoch seconds) of an encoded
    row; clickhouse-driver writes integer DateTime values as they are."""
    values = orjson.loads(data)
    if isinstance(values, dict):  # written by a version that encoded rows as objects
        return tuple(values[c] for c in TABLES[kind].columns)
    return tuple(values)


def decode_rows(kind: str, data: bytes) -> list[tuple[Any, ...]]:
    """The ClickHouse rows of a stream entry's `r` field (JSON lines)."""
    return [decode_row(kind, line) for line in data.split(b"\n")]


def stat_event(event: Accepted) -> StatEvent:
    """What the live stats count of an accepted event."""
    row = event.row
    return StatEvent(
        event.kind, row["timestamp"].timestamp(), row["link_id"], row.get("visitor_id", "")
    )


class EventStream:
    """Appends accepted events to the ingestion stream, at most once per client event id."""

    def __init__(self, redis: Redis, settings: Settings, publish: Publish | None = None) -> None:
        self.redis = redis
        self.stream = settings.ingest_stream
        self.keys = Keys(settings.ingest_key_prefix)
        self.dedup_seconds = settings.ingest_dedup_seconds
        self.cache_seconds = settings.click_cache_seconds
        self.publish = publish or partial(feed.publish, prefix=settings.live_key_prefix)

    async def _known_duplicates(self, workspace_id: int, events: list[Accepted]) -> set[int]:
        claimed = [e.event_id for e in events if e.client_id]
        if not claimed:
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_id in claimed:
                pipe.exists(self.keys.dedup(workspace_id, event_id))
            found = await pipe.execute()
        return {event_id for event_id, hit in zip(claimed, found, strict=True) if hit}

    async def enqueue(self, workspace_id: int, events: list[Accepted]) -> list[bool]:
        """Append events (all of one kind) atomically; per event True if appended, False if a
        duplicate. Raises UNAVAILABLE when Redis cannot take them: then none was appended."""
        kind = events[0].kind
        assert all(e.kind == kind for e in events), "one kind per enqueue"
        now = datetime.now(UTC)
        hash_key = ""
        if kind == "click":
            hash_key = self.keys.clicks(workspace_id, now.date())
        elif kind == "lead":
            hash_key = self.keys.customers(workspace_id, now.date())
        lines = [encode_row(kind, e.row) for e in events]
        fields = values = b""
        if hash_key:
            fields = orjson.dumps([e.cache_field for e in events])
            if any(e.cache_value is not None for e in events):
                values = orjson.dumps([(e.cache_value or b"").decode() for e in events])
        rows = b"\n".join(lines)
        args: list[Any] = [
            self.dedup_seconds, kind, workspace_id, hash_key, cache_expiry(now, self.cache_seconds),
            rows, fields, values,
        ]  # fmt: skip
        for at, e in enumerate(events, start=1):
            if e.client_id:
                args += [at, self.keys.dedup(workspace_id, e.event_id)]
        try:
            # The feed check is advisory (two racing duplicates may both reach the feed);
            # the script's SET NX decides what is counted.
            known = await self._known_duplicates(workspace_id, events)
            fresh = [at for at, e in enumerate(events) if e.event_id not in known]
            feed_rows = rows if len(fresh) == len(events) else b"\n".join(lines[at] for at in fresh)
            counted = [stat_event(events[at]) for at in fresh]
            for _attempt in range(2):
                async with self.redis.pipeline(transaction=True) as pipe:
                    scripts.queue(pipe, _ENQUEUE, [self.stream], args)
                    if fresh:
                        self.publish(pipe, workspace_id, kind, feed_rows, counted)
                    results = await pipe.execute(raise_on_error=False)
                    # Redis lost the scripts (restarted): none of them ran, so run them again.
                    if not scripts.missing(results):
                        break
                    scripts.forget(pipe)
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
        return [at not in duplicates for at in range(1, len(events) + 1)]
