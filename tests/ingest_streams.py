"""What tests read of the ingest streams: every partition's (services.partitions) and the legacy
single stream of earlier versions."""

from __future__ import annotations

from redis.asyncio import Redis

from services import partitions
from services.config import Settings


def stream_names(settings: Settings) -> list[str]:
    """Every partition's ingest stream, then the legacy stream."""
    streams = partitions.streams(settings.ingest_stream, settings.ingest_partitions)
    return [*streams, settings.ingest_stream]


async def _group(redis: Redis, stream: str, group: str) -> dict[str, object] | None:
    for g in await redis.xinfo_groups(stream):
        name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
        if name == group:
            return dict(g)
    return None


async def is_drained(redis: Redis, settings: Settings) -> bool:
    """True when the flusher group has read and acknowledged every entry of every stream (the
    partition streams must exist: the flushers create them; the legacy one need not)."""
    for at, stream in enumerate(stream_names(settings)):
        legacy = at == settings.ingest_partitions
        if not await redis.exists(stream):
            if legacy:
                continue
            return False
        info = await redis.xinfo_stream(stream)
        if legacy and not info["length"]:
            continue
        group = await _group(redis, stream, settings.flusher_group)
        if not group or group["pending"] or group["last-delivered-id"] != info["last-generated-id"]:
            return False
    return True


async def pending(redis: Redis, settings: Settings) -> int:
    """Entries the flusher group has read and not acknowledged, over every stream."""
    total = 0
    for stream in stream_names(settings):
        if await redis.exists(stream):
            group = await _group(redis, stream, settings.flusher_group)
            total += int(group["pending"]) if group else 0  # type: ignore[call-overload]
    return total


async def entries(redis: Redis, settings: Settings) -> int:
    """Entries kept in every stream."""
    return sum([await redis.xlen(stream) for stream in stream_names(settings)])
