"""Listing a workspace's recent feed events, newest first, paged backwards by cursor."""

from __future__ import annotations

import asyncpg
from redis.asyncio import Redis

from services import protos
from services.live.feed.entries import as_text, cursor_text, entries_of, position_of, to_live_event
from services.live.feed.reads import READ_BATCH
from services.live.feed.requests import Filters, request_cursor, request_limit, resolve_filters
from services.live.redis_failures import reading_redis
from services.live.stats import KEY_PREFIX, stream_key
from services.partitions import DEFAULT_PARTITIONS

# Entries per XREVRANGE of a listing: a few at first (an entry may hold a thousand events),
# doubling per round trip up to READ_BATCH.
_LIST_FIRST_READ = 8


async def list_live(
    redis: Redis,
    workspace_id: int,
    request: protos.live_pb2.LiveRequest,
    pg: asyncpg.Pool | None = None,
    *,
    prefix: str = KEY_PREFIX,
    partitions: int = DEFAULT_PARTITIONS,
) -> protos.live_pb2.LiveResponse:
    """The workspace's most recent matching events, newest first, paged backwards by cursor."""
    limit = request_limit(request)
    cursor = request_cursor(request)
    filters = await resolve_filters(pg, workspace_id, request)
    with reading_redis("the live feed"):
        key = stream_key(workspace_id, prefix, partitions)
        return await _listed(redis, key, filters, limit, cursor)


async def _listed(
    redis: Redis, key: str, filters: Filters, limit: int, cursor: str
) -> protos.live_pb2.LiveResponse:
    response = protos.live_pb2.LiveResponse()
    if filters.link_ids is not None and not filters.link_ids:
        return response  # a campaign without links
    before = position_of(cursor) if cursor else None
    upper, count = cursor or "+", _LIST_FIRST_READ  # from the entry holding the cursor
    while True:
        reply = await redis.xrevrange(key, max=upper, min="-", count=count)
        for entry in entries_of(reply):
            for position, event in entry.before(before):
                if filters.match(event):
                    response.events.append(to_live_event(position, event))
                    if len(response.events) == limit:
                        response.next_cursor = cursor_text(position)
                        return response
        if len(reply) < count:
            return response  # the start of the stream: no further page
        upper, count = f"({as_text(reply[-1][0])}", min(count * 2, READ_BATCH)
