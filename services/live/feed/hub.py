"""Following feeds with one shared stream read loop per workspace among a process's subscribers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from redis.asyncio import Redis

from services import errors, protos
from services.live.feed.entries import Entry, to_live_event
from services.live.feed.reads import (
    BLOCK_MS,
    entries_after,
    matching_after,
    read_after,
    start_after,
)
from services.live.feed.requests import request_cursor, resolve_filters
from services.live.redis_failures import REDIS_DOWN, reading_redis
from services.live.stats import KEY_PREFIX, stream_key
from services.partitions import DEFAULT_PARTITIONS

# Subscriber inboxes hold at most this many events before the subscriber is made to catch up
# from the stream itself (nothing lost, no unbounded memory; the events are shared among the
# inboxes, each holds references). Above a few full batches, so that keeping up never lags.
HUB_INBOX = 20_000


@dataclass(eq=False)
class _Inbox:
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    lagged: bool = False


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class _Reader:
    """One XREAD loop on a workspace's stream, handing each entry to every inbox."""

    def __init__(self, redis: Redis, key: str, block_ms: int, inbox_size: int) -> None:
        self.redis = redis
        self.key = key
        self.block_ms = block_ms
        self.inbox_size = inbox_size
        self.inboxes: set[_Inbox] = set()
        self.ready = asyncio.Event()
        self.failure: BaseException | None = None
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            last = await start_after(self.redis, self.key, "")
            self.ready.set()
            while True:
                entries = await read_after(self.redis, self.key, last, self.block_ms)
                if entries:
                    last = entries[-1].end
                    self._deliver(entries)
        except Exception as exc:  # Redis failed: every subscriber ends with UNAVAILABLE
            self.failure = exc
            self.ready.set()
            for inbox in self.inboxes:
                inbox.queue.put_nowait(_Failed(exc))

    def _deliver(self, entries: list[Entry]) -> None:
        items = [
            (position, event, to_live_event(position, event))
            for entry in entries
            for position, event in entry.after((0, 0))
        ]
        for inbox in list(self.inboxes):
            if inbox.queue.qsize() + len(items) > self.inbox_size:
                inbox.lagged = True  # the subscriber re-reads from the stream
                self.inboxes.discard(inbox)
                continue
            for item in items:
                inbox.queue.put_nowait(item)


class FeedHub:
    """Live subscriptions of one process: one stream reader per followed workspace."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = KEY_PREFIX,
        partitions: int = DEFAULT_PARTITIONS,
        block_ms: int = BLOCK_MS,
        inbox_size: int = HUB_INBOX,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.partitions = partitions
        self.block_ms = block_ms
        self.inbox_size = inbox_size
        self._readers: dict[int, _Reader] = {}

    def _key(self, workspace_id: int) -> str:
        return stream_key(workspace_id, self.prefix, self.partitions)

    def followed(self) -> int:
        """Number of workspaces with a running reader."""
        return len(self._readers)

    def _join(self, workspace_id: int) -> tuple[_Reader, _Inbox]:
        reader = self._readers.get(workspace_id)
        if reader is None or reader.failure is not None or reader.task.done():
            reader = _Reader(self.redis, self._key(workspace_id), self.block_ms, self.inbox_size)
            self._readers[workspace_id] = reader
        inbox = _Inbox()
        reader.inboxes.add(inbox)
        return reader, inbox

    def _leave(self, workspace_id: int, reader: _Reader, inbox: _Inbox) -> None:
        reader.inboxes.discard(inbox)
        if not reader.inboxes and self._readers.get(workspace_id) is reader:
            del self._readers[workspace_id]
            reader.task.cancel()

    async def subscribe(
        self,
        workspace_id: int,
        request: protos.live_pb2.LiveRequest,
        pg: asyncpg.Pool | None = None,
    ) -> AsyncGenerator[protos.live_pb2.LiveEvent, None]:
        """Same contract as subscribe(): the workspace's matching events after request.cursor."""
        cursor = request_cursor(request)
        filters = await resolve_filters(pg, workspace_id, request)
        key = self._key(workspace_id)
        reader, inbox = self._join(workspace_id)
        try:
            with reading_redis("the live feed"):
                # joined first: what is appended from now on reaches the inbox; what came before
                # is read from the stream (catch-up), duplicates dropped by position
                last = await start_after(self.redis, key, cursor)
                await reader.ready.wait()
                catch_up = True
                while True:
                    if inbox.lagged:
                        self._leave(workspace_id, reader, inbox)
                        reader, inbox = self._join(workspace_id)
                        await reader.ready.wait()
                        catch_up = True
                    if catch_up:
                        entries, catch_up = await entries_after(self.redis, key, last)
                        matched, last = matching_after(entries, last, filters)
                        for message in matched:
                            yield message
                        continue  # until caught up; the inbox may have lagged meanwhile
                    item = await inbox.queue.get()
                    if isinstance(item, _Failed):
                        if isinstance(item.error, REDIS_DOWN):
                            raise item.error  # translated by reading_redis
                        raise errors.unavailable(f"the live feed is unavailable: {item.error}")
                    position, event, message = item
                    if position <= last:
                        continue
                    last = position
                    if filters.match(event):
                        yield message
        finally:
            self._leave(workspace_id, reader, inbox)
