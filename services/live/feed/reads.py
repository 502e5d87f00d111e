"""Reads of a feed stream shared by listing and following: where to start, what comes after."""

from __future__ import annotations

import time

import grpc
from redis.asyncio import Redis

from services import errors, protos
from services.live.feed.entries import (
    Entry,
    Position,
    as_text,
    cursor_text,
    entries_of,
    position_of,
    to_live_event,
)
from services.live.feed.publishing import STREAM_TTL_SECONDS
from services.live.feed.requests import Filters

# Entries read per XRANGE / XREVRANGE / XREAD round trip at most: an entry holds one accepted
# batch, up to MAX_INGEST_BATCH events.
READ_BATCH = 64
# Server-side block of each XREAD; below the client's reply timeout (5 s by default).
BLOCK_MS = 1_000


async def start_after(redis: Redis, key: str, cursor: str) -> Position:
    """The position to follow after: cursor once checked against the stream, else the
    position of the stream's last event."""
    if not cursor:
        last = entries_of(await redis.xrevrange(key, max="+", min="-", count=1))
        return last[0].end if last else (0, 0)
    try:
        info = await redis.xinfo_stream(key)
    except Exception as exc:  # no such key: the stream expired or never existed
        if "no such key" not in str(exc).lower():
            raise
        info = None
    position = position_of(cursor)
    if info is not None:
        deleted = position_of(as_text(info.get("max-deleted-entry-id") or b"0-0"))
        first = info.get("first-entry")
        # Trimming drops entries from the head without recording what it dropped: when
        # entries were trimmed, a cursor before the first kept one may have missed some.
        trimmed = int(info.get("entries-added") or 0) > int(info.get("length") or 0)
        if position < deleted or (
            trimmed and first is not None and position < position_of(as_text(first[0]))
        ):
            raise cursor_expired()
    elif position[0] < (time.time() - STREAM_TTL_SECONDS) * 1000:
        raise cursor_expired()
    return position


def cursor_expired() -> errors.ApiError:
    """OUT_OF_RANGE on cursor: the stream no longer holds what follows it."""
    return errors.ApiError(
        grpc.StatusCode.OUT_OF_RANGE,
        "cursor_expired",
        "the feed no longer holds events after this cursor; resubscribe without cursor"
        " (and list the recent events with GET /api/analytics/live)",
        "cursor",
    )


async def entries_after(redis: Redis, key: str, position: Position) -> tuple[list[Entry], bool]:
    """The entries that may hold events after position (the one holding position, then up to
    READ_BATCH later ones) and whether more may follow them."""
    cursor = cursor_text(position)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xrevrange(key, max=cursor, min="-", count=1)
        pipe.xrange(key, min=f"({cursor}", max="+", count=READ_BATCH)
        holding, later = await pipe.execute()
    return entries_of(holding + later), len(later) == READ_BATCH


async def read_after(redis: Redis, key: str, position: Position, block_ms: int) -> list[Entry]:
    """Entries after the one holding position (position is an entry's last event), waiting up
    to block_ms for the first."""
    reply = await redis.xread({key: cursor_text(position)}, count=READ_BATCH, block=block_ms)
    return [entry for _stream, items in reply or () for entry in entries_of(items)]


def matching_after(
    entries: list[Entry], last: Position, filters: Filters
) -> tuple[list[protos.live_pb2.LiveEvent], Position]:
    """The matching events of entries after position last, and the position read up to."""
    matched = []
    for entry in entries:
        matched += [to_live_event(p, e) for p, e in entry.after(last) if filters.match(e)]
        last = max(last, entry.end)
    return matched, last
