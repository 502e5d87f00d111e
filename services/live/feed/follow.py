"""Following a workspace's feed with one stream read loop per subscriber."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import asyncpg
from redis.asyncio import Redis

from services import protos
from services.live.feed.reads import (
    BLOCK_MS,
    entries_after,
    matching_after,
    read_after,
    start_after,
)
from services.live.feed.requests import request_cursor, resolve_filters
from services.live.redis_failures import reading_redis
from services.live.stats import KEY_PREFIX, stream_key
from services.partitions import DEFAULT_PARTITIONS


async def subscribe(
    redis: Redis,
    workspace_id: int,
    request: protos.live_pb2.LiveRequest,
    pg: asyncpg.Pool | None = None,
    *,
    prefix: str = KEY_PREFIX,
    partitions: int = DEFAULT_PARTITIONS,
    block_ms: int = BLOCK_MS,
) -> AsyncGenerator[protos.live_pb2.LiveEvent, None]:
    """The workspace's matching events as they are accepted, after request.cursor if given."""
    cursor = request_cursor(request)
    filters = await resolve_filters(pg, workspace_id, request)
    key = stream_key(workspace_id, prefix, partitions)
    with reading_redis("the live feed"):
        last = await start_after(redis, key, cursor)
        catching_up = bool(cursor)  # the cursor may be inside an entry
        while True:
            if catching_up:
                entries, catching_up = await entries_after(redis, key, last)
            else:
                entries = await read_after(redis, key, last, block_ms)
            matched, last = matching_after(entries, last, filters)
            for message in matched:
                yield message
