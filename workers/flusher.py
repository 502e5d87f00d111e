"""The flusher: moves the ingestion stream into ClickHouse, exactly once per event.

A member of the consumer group FLUSHER_GROUP on INGEST_STREAM reads batches (whole entries,
each one accepted request, until FLUSHER_BATCH_SIZE events or FLUSHER_MAX_WAIT_MS; one read of
READ_ENTRIES entries may overshoot the size; a batch of at least a LINGER_SHARE-th of the size
is written as soon as nothing new comes for LINGER_MS), inserts them per table and
acknowledges them only after every insert succeeded; up to FLUSHER_INSERTS batches of new
entries are written at once while the next is read. Entries another consumer
left pending for FLUSHER_CLAIM_IDLE_MS (it crashed) are claimed with XAUTOCLAIM. A batch that
may already be partly stored (claimed, read back from pending, or retried after a failed
insert) is first checked against ClickHouse and only its missing events are inserted.
ClickHouse or Redis being down makes it retry with capped exponential backoff. The stream is
trimmed (XTRIM MINID) only below the oldest entry some group has not acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from tenacity import AsyncRetrying

from services.config import Settings
from services.live import rows
from services.live.lookups import existing_event_ids
from services.live.redis_failures import REDIS_DOWN
from services.live.tables import TABLES
from services.stores import clickhouse_http
from services.stores.clickhouse import ClickHouse
from services.stores.cluster import Cluster
from services.stores.redisclient import create_redis
from workers import backoff
from workers.cluster_recheck import stored_event_ids

log = logging.getLogger("linkpulse.flusher")

T = TypeVar("T")
# The first wait after a failure; waits double up to FLUSHER_BACKOFF_MAX_MS.
FIRST_BACKOFF = 0.05
TRIM_EVERY_SECONDS = 5.0
# Entries per XREADGROUP / XAUTOCLAIM; an entry holds one accepted request's events.
READ_ENTRIES = 16
# Longest single XREADGROUP block, well below the client's reply timeout.
MAX_BLOCK_MS = 2000
# A batch already holding batch_size / LINGER_SHARE events waits at most LINGER_MS for more:
# the end of a burst is queryable at once, while a trickle of events still waits up to
# max_wait to make one insert rather than many small ones (each insert is a ClickHouse part).
LINGER_MS = 50
LINGER_SHARE = 10


@dataclass
class Entry:
    """One stream entry: its id, kind, workspace and encoded rows (one a line)."""

    id: str
    kind: str
    workspace_id: int
    rows: bytes
    count: int


@dataclass
class Batch:
    """Entries read together; `recheck` when some may already be in ClickHouse."""

    entries: list[Entry] = field(default_factory=list)
    recheck: bool = False

    @property
    def events(self) -> int:
        """Events (rows) in the batch."""
        return sum(e.count for e in self.entries)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry(entry_id: bytes | str, fields: dict[Any, Any]) -> Entry:
    values = {_text(k): v for k, v in fields.items()}
    return Entry(
        _text(entry_id), _text(values["k"]), int(values["w"]), values["r"], int(values["n"])
    )


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def stream_floor(groups: list[tuple[str, str | None]]) -> str | None:
    """The lowest id still needed: per group its oldest pending id, else its last delivered."""
    needed = [pending or last for last, pending in groups]
    return min(needed, key=_id_key) if needed else None


class Flusher:
    """One consumer of the ingestion stream writing to ClickHouse."""

    def __init__(
        self, redis: Redis, ch: ClickHouse, settings: Settings, consumer: str | None = None
    ) -> None:
        self.redis = redis
        self.ch = ch
        self.stream = settings.ingest_stream
        self.group = settings.flusher_group
        self.http_port = settings.clickhouse_http_port
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.batch_size = max(1, settings.flusher_batch_size)
        self.pause_after_insert = settings.flusher_pause_after_insert_ms / 1000
        # The test hook stalls the flusher as a whole: no other batch is written meanwhile.
        self.inserts = 1 if self.pause_after_insert else max(1, settings.flusher_inserts)
        self.max_wait = max(0, settings.flusher_max_wait_ms) / 1000
        self.claim_idle_ms = max(1, settings.flusher_claim_idle_ms)
        self.backoff_max = max(FIRST_BACKOFF, settings.flusher_backoff_max_ms / 1000)
        self.stop = asyncio.Event()
        self._own_pending_read = False
        self._next_claim = 0.0
        self._next_trim = 0.0
        self.flushed = 0
        self._cluster: Cluster | None = None

    # -- retries -----------------------------------------------------------------------------

    def _retrying(self, what: str) -> AsyncRetrying:
        """Retries of any failure (a store is down) with capped exponential backoff."""
        return backoff.until_stopped(
            what, self.stop, first=FIRST_BACKOFF, cap=self.backoff_max, log=log
        )

    async def _retry(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """call() until it succeeds, backing off on any failure (a store is down)."""
        async for attempt in self._retrying(what):
            with attempt:
                return await call()
        raise AssertionError("unreachable")  # the retries end by returning or raising

    # -- reading -----------------------------------------------------------------------------

    async def ensure_group(self) -> None:
        """Create the consumer group (reading from the start of the stream) if missing."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis_errors.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _read(self, start: str, count: int, block_ms: int | None) -> list[Entry]:
        try:
            reply = await self.redis.xreadgroup(
                self.group, self.consumer, {self.stream: start}, count=count, block=block_ms
            )
        except redis_errors.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()
            return []
        entries = []
        for _stream, items in reply or []:
            entries += [_entry(i, f) for i, f in items if f]
        return entries

    async def _claim(self) -> list[Entry]:
        """Entries idle on other (crashed) consumers for claim_idle_ms, now ours."""
        reply = await self.redis.xautoclaim(
            self.stream, self.group, self.consumer, self.claim_idle_ms, "0-0", count=READ_ENTRIES
        )
        return [_entry(i, f) for i, f in reply[1] if f]

    async def next_batch(self) -> Batch:
        """Entries to write next: claimed or own pending first, then new ones."""
        if not self._own_pending_read:
            own = await self._read("0", READ_ENTRIES, None)
            if own:
                return Batch(own, recheck=True)
            self._own_pending_read = True
        if time.monotonic() >= self._next_claim:
            claimed = await self._claim()
            if claimed:
                log.info("claimed %d entries left pending by another consumer", len(claimed))
                return Batch(claimed, recheck=True)
            self._next_claim = time.monotonic() + max(self.claim_idle_ms / 2000, 0.5)
        # Whole entries until batch_size events (one entry may overshoot it) or max_wait.
        deadline = time.monotonic() + self.max_wait
        block = min(MAX_BLOCK_MS, int(self.max_wait * 1000) or 1)
        batch = Batch(await self._read(">", READ_ENTRIES, block))
        while batch.entries and batch.events < self.batch_size:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            wait_ms = max(1, int(left * 1000))
            if batch.events * LINGER_SHARE >= self.batch_size:
                wait_ms = min(wait_ms, LINGER_MS)
            more = await self._read(">", READ_ENTRIES, wait_ms)
            if not more:
                break
            batch.entries += more
        return batch

    # -- writing -----------------------------------------------------------------------------

    async def _insert(self, batch: Batch) -> int:
        by_kind: dict[str, list[Entry]] = defaultdict(list)
        for entry in batch.entries:
            by_kind[entry.kind].append(entry)
        inserted = 0
        for kind, entries in by_kind.items():
            table = TABLES[kind]
            if batch.recheck:
                lines = [line for e in entries for line in e.rows.split(b"\n") if line]
                stored = await self._stored(table.name, [rows.ids(line) for line in lines])
                lines = [line for line in lines if rows.ids(line) not in stored]
                body, count = b"\n".join(lines), len(lines)
            else:
                body, count = b"\n".join(e.rows for e in entries), sum(e.count for e in entries)
            if count:
                await asyncio.to_thread(
                    clickhouse_http.insert_csv,
                    self.ch.target, self.http_port, table.name, table.columns,
                    rows.to_csv(kind, body),
                )  # fmt: skip
            inserted += count
        return inserted

    async def _stored(self, table: str, keys: list[tuple[int, int]]) -> set[tuple[int, int]]:
        """Which of the events are in ClickHouse already (on a cluster, with no replica lag)."""
        if not self.ch.target.cluster:
            return await existing_event_ids(self.ch, table, keys)
        if self._cluster is None:
            self._cluster = await Cluster.open(self.ch.target)
        return await stored_event_ids(self._cluster, table, keys)

    def close(self) -> None:
        """Disconnect the per-node clients of the cluster recheck, if any."""
        if self._cluster is not None:
            self._cluster.close()

    async def _keep_alive(self, batch: Batch) -> None:
        """Reset our entries' idle time so no other consumer claims them while we retry."""
        ids: list[Any] = [e.id for e in batch.entries]
        await self.redis.xclaim(self.stream, self.group, self.consumer, 0, ids, justid=True)

    async def write(self, batch: Batch) -> int:
        """Insert the batch (only missing events when it may be partly stored), then XACK it."""
        inserted = 0
        async for attempt in self._retrying(f"insert of {len(batch.entries)} entries"):
            if attempt.retry_state.attempt_number > 1:
                batch.recheck = True  # the failed attempt may have stored some tables
                try:
                    await self._keep_alive(batch)
                except REDIS_DOWN:
                    pass
            with attempt:
                inserted = await self._insert(batch)
        if self.pause_after_insert:
            await asyncio.sleep(self.pause_after_insert)
        ids = [e.id for e in batch.entries]
        await self._retry("XACK", lambda: self.redis.xack(self.stream, self.group, *ids))
        self.flushed += batch.events
        return inserted

    # -- trimming ----------------------------------------------------------------------------

    async def trim(self) -> int:
        """Drop entries every group has acknowledged; returns how many were removed."""
        groups = await self.redis.xinfo_groups(self.stream)
        marks: list[tuple[str, str | None]] = []
        for g in groups:
            last = _text(g["last-delivered-id"])
            pending = None
            if g["pending"]:
                summary = await self.redis.xpending(self.stream, _text(g["name"]))
                pending = _text(summary["min"]) if summary.get("min") else None
            marks.append((last, pending))
        floor = stream_floor(marks)
        if floor is None or floor == "0-0":
            return 0
        removed: int = await self.redis.xtrim(self.stream, minid=floor, approximate=False)
        await self._forget_idle_consumers()
        return removed

    async def _forget_idle_consumers(self) -> None:
        """Remove consumers of the group with nothing pending that have been idle for long."""
        for c in await self.redis.xinfo_consumers(self.stream, self.group):
            name = _text(c["name"])
            if name != self.consumer and not c["pending"] and c["idle"] > 10 * self.claim_idle_ms:
                await self.redis.xgroup_delconsumer(self.stream, self.group, name)

    # -- loop --------------------------------------------------------------------------------

    async def step(self) -> int:
        """Read and write one batch unless stopped; returns the number of entries (not events)
        flushed."""
        if self.stop.is_set():
            return 0
        batch = await self.next_batch()
        if batch.entries:
            await self.write(batch)
        if time.monotonic() >= self._next_trim:
            await self.trim()
            self._next_trim = time.monotonic() + TRIM_EVERY_SECONDS
        return len(batch.entries)

    async def run(self) -> None:
        """Flush until stop is set (the batches being written are finished first)."""
        await self._retry("creating the consumer group", self.ensure_group)
        log.info("flusher %s on %s (group %s)", self.consumer, self.stream, self.group)
        writing: set[asyncio.Task[int]] = set()
        slots = asyncio.Semaphore(self.inserts)
        try:
            while not self.stop.is_set():
                try:
                    await self._retry("flusher step", lambda: self._overlapped(writing, slots))
                except Exception:  # noqa: BLE001 - raised only once stop is set
                    break
        finally:
            await asyncio.gather(*writing, return_exceptions=True)

    async def _overlapped(self, writing: set[asyncio.Task[int]], slots: asyncio.Semaphore) -> None:
        """step(), but a batch of new entries is written while the next is read (at most
        `inserts` batches read and not yet written, each acknowledged after its own insert).
        A batch that may be partly stored (own pending, claimed) is written alone, after the
        others, as in step()."""
        await slots.acquire()
        handed_on = False
        try:
            batch = await self.next_batch()
            if batch.entries and not batch.recheck:
                task = asyncio.create_task(self.write(batch))
                writing.add(task)
                task.add_done_callback(writing.discard)
                task.add_done_callback(lambda _: slots.release())
                handed_on = True
            elif batch.entries:
                await asyncio.gather(*writing)
                await self.write(batch)
        finally:
            if not handed_on:
                slots.release()
        if time.monotonic() >= self._next_trim:
            await self.trim()
            self._next_trim = time.monotonic() + TRIM_EVERY_SECONDS


async def run(settings: Settings) -> None:
    """Run one flusher process until SIGTERM or SIGINT."""
    redis = create_redis(settings.redis_url)
    ch = ClickHouse.from_settings(settings, pool_size=4)
    flusher = Flusher(redis, ch, settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, flusher.stop.set)
    try:
        await flusher.run()
    finally:
        flusher.close()
        ch.close()
        await redis.aclose()
