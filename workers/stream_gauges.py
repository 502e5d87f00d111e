"""Sampling the ingestion streams into gauges: entries, entries pending in the flusher group, and
the flusher lag (the age of the oldest accepted event not yet written to ClickHouse).

An event is unflushed while its entry is pending in the group (read, not acknowledged) or not yet
delivered to it (after the group's last-delivered id). A stream entry id's first part is the
Redis clock's milliseconds when it was appended, and Redis's own TIME is the clock the age is
taken from, so no clock of another host is involved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from services.telemetry import measure

log = logging.getLogger("linkpulse.flusher.gauges")

SAMPLE_EVERY_SECONDS = 2.0


@dataclass(frozen=True)
class StreamSample:
    """The ingestion streams at one moment."""

    length: int
    pending: int
    lag_seconds: float


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def entry_ms(entry_id: bytes | str) -> int:
    """The milliseconds part of a stream entry id (`1700000000000-3`)."""
    return int(_text(entry_id).partition("-")[0])


def _group(groups: Any, name: str) -> dict[str, Any] | None:
    for group in groups or ():
        if _text(group["name"]) == name:
            return dict(group)
    return None


async def sample(redis: Redis, streams: Sequence[str], group: str) -> StreamSample:
    """Length, pending entries and lag over streams, for the consumer group (two round trips)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.time()
        for stream in streams:
            pipe.xlen(stream)
            pipe.xinfo_groups(stream)
        replies = await pipe.execute(raise_on_error=False)
    seconds, micros = replies[0]
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    length = pending = 0
    oldest: list[int] = []
    async with redis.pipeline(transaction=False) as pipe:
        queued = 0
        for at, stream in enumerate(streams):
            count, groups = replies[1 + 2 * at], replies[2 + 2 * at]
            if isinstance(count, Exception) or not count:
                continue  # no such stream (yet): nothing in it
            length += int(count)
            ours = None if isinstance(groups, Exception) else _group(groups, group)
            if ours is not None and int(ours["pending"]):
                pending += int(ours["pending"])
                pipe.xpending(stream, group)
                queued += 1
            # The first entry not yet delivered to the group (all of them without a group).
            start = f"({_text(ours['last-delivered-id'])}" if ours is not None else "-"
            pipe.xrange(stream, min=start, max="+", count=1)
            queued += 1
        found = await pipe.execute(raise_on_error=False) if queued else []
    for reply in found:
        if isinstance(reply, Exception) or not reply:
            continue
        if isinstance(reply, dict):  # XPENDING's summary
            if reply.get("min"):
                oldest.append(entry_ms(reply["min"]))
        else:  # XRANGE's first entry
            oldest.append(entry_ms(reply[0][0]))
    lag = max(0, now_ms - min(oldest)) / 1000 if oldest else 0.0
    return StreamSample(length, pending, lag)


async def keep_sampling(
    redis: Redis,
    streams: Callable[[], Sequence[str]],
    group: str,
    every: float = SAMPLE_EVERY_SECONDS,
) -> None:
    """Set the stream gauges from a sample every `every` seconds, until cancelled (a failed
    sample leaves them as they were)."""
    while True:
        try:
            found = await sample(redis, list(streams()), group)
        except Exception as exc:  # noqa: BLE001 - the next sample tries again
            log.debug("sampling the ingestion streams failed: %s", exc)
        else:
            measure.ingest_streams(found.length, found.pending, found.lag_seconds)
        await asyncio.sleep(every)


def start(redis: Redis, streams: Callable[[], Sequence[str]], group: str) -> asyncio.Task[None]:
    """keep_sampling in a task of its own."""
    return asyncio.create_task(keep_sampling(redis, streams, group))


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel a sampling task and wait for it to end."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
