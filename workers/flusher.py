"""The flusher: moves the ingestion streams into ClickHouse, exactly once per event.

Every flusher reads every partition's stream (`<INGEST_STREAM>:{pN}`, services.partitions), and
the single stream of earlier versions (INGEST_STREAM itself) while it holds entries not yet
delivered or acknowledged: on one Redis with one XREADGROUP over all of them, on a Redis Cluster
with one XREADGROUP per stream (each in its own slot), polled every CLUSTER_POLL_MS. As a member
of the consumer group FLUSHER_GROUP on each, it reads batches (whole entries, each one accepted
request, until FLUSHER_BATCH_SIZE events or FLUSHER_MAX_WAIT_MS; one read of about READ_ENTRIES
entries over all streams may overshoot the size; a batch of at least a LINGER_SHARE-th of the
size is written as soon as nothing new comes for LINGER_MS), inserts them per table and
acknowledges them only after every insert succeeded; up to FLUSHER_INSERTS batches of new
entries are written at once while the next is read. Entries another consumer
left pending for FLUSHER_CLAIM_IDLE_MS (it crashed) are claimed with XAUTOCLAIM. A batch that
may already be partly stored (claimed, read back from pending, or retried after a failed
insert) is first checked against ClickHouse and only its missing events are inserted.
ClickHouse or Redis being down makes it retry with capped exponential backoff. Each stream is
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
from functools import partial
from typing import Any, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from tenacity import AsyncRetrying

from services import partitions
from services.config import Settings
from services.live import rows
from services.live.lookups import existing_event_ids
from services.live.redis_failures import REDIS_DOWN
from services.live.tables import TABLES
from services.stores import clickhouse_http
from services.stores.clickhouse import ClickHouse
from services.stores.cluster import Cluster
from services.stores.redisclient import is_cluster, redis_of
from services.telemetry import measure
from workers import backoff, stream_gauges
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
# How often a flusher on a Redis Cluster (no XREADGROUP over several slots) looks for entries.
CLUSTER_POLL_MS = 20
# A batch already holding batch_size / LINGER_SHARE events waits at most LINGER_MS for more:
# the end of a burst is queryable at once, while a trickle of events still waits up to
# max_wait to make one insert rather than many small ones (each insert is a ClickHouse part).
LINGER_MS = 50
LINGER_SHARE = 10


@dataclass
class Entry:
    """One stream entry: its id, kind, workspace and encoded rows (one a line), and its stream."""

    id: str
    kind: str
    workspace_id: int
    rows: bytes
    count: int
    stream: str = ""


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


def _entry(stream: str, entry_id: bytes | str, fields: dict[Any, Any]) -> Entry:
    values = {_text(k): v for k, v in fields.items()}
    return Entry(
        _text(entry_id),
        _text(values["k"]),
        int(values["w"]),
        values["r"],
        int(values["n"]),
        stream,
    )


def _by_stream(entries: list[Entry]) -> dict[str, list[str]]:
    """The ids of entries per stream."""
    ids: dict[str, list[str]] = defaultdict(list)
    for entry in entries:
        ids[entry.stream].append(entry.id)
    return ids


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _entries(reply: Any) -> list[Entry]:
    """The entries of an XREADGROUP reply (deleted ones, without fields, left out)."""
    entries = []
    for stream, items in reply or []:
        entries += [_entry(_text(stream), i, f) for i, f in items if f]
    return entries


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
        self.streams = partitions.streams(settings.ingest_stream, settings.ingest_partitions)
        self.legacy = settings.ingest_stream
        # The streams read: every partition's, and the legacy one while it needs draining.
        self.reading = list(self.streams)
        self.cluster = is_cluster(redis)
        self.group = settings.flusher_group
        self.http_nodes = clickhouse_http.endpoints(ch.target, settings)
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

    async def _create_group(self, stream: str, mkstream: bool) -> None:
        try:
            await self.redis.xgroup_create(stream, self.group, id="0", mkstream=mkstream)
        except redis_errors.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def ensure_group(self) -> None:
        """Create the consumer group (reading from the start) on every partition's stream, and
        on the legacy stream if it exists, where missing; decide whether the legacy one is read."""
        for stream in self.streams:
            await self._create_group(stream, mkstream=True)
        await self._check_legacy()

    async def _check_legacy(self) -> None:
        """Read the legacy stream while it holds entries undelivered or unacknowledged."""
        draining = False
        if self.legacy not in self.streams and await self.redis.exists(self.legacy):
            await self._create_group(self.legacy, mkstream=False)
            info = await self.redis.xinfo_stream(self.legacy)
            groups = await self.redis.xinfo_groups(self.legacy)
            ours = [g for g in groups if _text(g["name"]) == self.group]
            draining = int(info["length"]) > 0 and (
                not ours
                or int(ours[0]["pending"]) > 0
                or _text(ours[0]["last-delivered-id"]) != _text(info["last-generated-id"])
            )
        if draining and self.legacy not in self.reading:
            log.info("draining the legacy stream %s", self.legacy)
            self.reading.append(self.legacy)
        elif not draining and self.legacy in self.reading:
            log.info("the legacy stream %s is drained", self.legacy)
            self.reading.remove(self.legacy)

    async def _read(self, start: str, count: int, block_ms: int | None) -> list[Entry]:
        # About count entries in all: a read takes up to count from each stream.
        count = max(1, -(-count // len(self.reading)))
        try:
            if self.cluster:
                return await self._read_polling(start, count, block_ms)
            reply = await self.redis.xreadgroup(
                self.group,
                self.consumer,
                dict.fromkeys(self.reading, start),
                count=count,
                block=block_ms,
            )
        except redis_errors.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()
            return []
        return _entries(reply)

    async def _read_polling(self, start: str, count: int, block_ms: int | None) -> list[Entry]:
        """_read on a Redis Cluster: one XREADGROUP per stream (each in its own slot) at once,
        without blocking, repeated every CLUSTER_POLL_MS until block_ms passed."""
        deadline = time.monotonic() + (block_ms or 0) / 1000
        while True:
            replies = await asyncio.gather(
                *(
                    self.redis.xreadgroup(self.group, self.consumer, {s: start}, count=count)
                    for s in self.reading
                )
            )
            entries = [e for reply in replies for e in _entries(reply)]
            left = deadline - time.monotonic()
            if entries or left <= 0:
                return entries
            await asyncio.sleep(min(left, CLUSTER_POLL_MS / 1000))

    async def _claim(self) -> list[Entry]:
        """Entries idle on other (crashed) consumers for claim_idle_ms, now ours."""
        replies = await asyncio.gather(
            *(
                self.redis.xautoclaim(
                    s, self.group, self.consumer, self.claim_idle_ms, "0-0", count=READ_ENTRIES
                )
                for s in self.reading
            )
        )
        return [
            _entry(s, i, f)
            for s, reply in zip(self.reading, replies, strict=True)
            for i, f in reply[1]
            if f
        ]

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
                    self.ch.target, self.http_nodes, table.name, table.columns,
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
        for stream, ids in _by_stream(batch.entries).items():
            claimed: list[Any] = list(ids)
            await self.redis.xclaim(stream, self.group, self.consumer, 0, claimed, justid=True)

    async def write(self, batch: Batch) -> int:
        """Insert the batch (only missing events when it may be partly stored), then XACK it."""
        inserted = 0
        started = time.perf_counter()
        async for attempt in self._retrying(f"insert of {len(batch.entries)} entries"):
            if attempt.retry_state.attempt_number > 1:
                batch.recheck = True  # the failed attempt may have stored some tables
                try:
                    await self._keep_alive(batch)
                except REDIS_DOWN:
                    pass
            with attempt, measure.flush_attempt():
                inserted = await self._insert(batch)
        if self.pause_after_insert:
            await asyncio.sleep(self.pause_after_insert)
        for stream, ids in _by_stream(batch.entries).items():
            await self._retry("XACK", partial(self.redis.xack, stream, self.group, *ids))
        self.flushed += batch.events
        measure.flushed(batch.events, time.perf_counter() - started)
        return inserted

    # -- trimming ----------------------------------------------------------------------------

    async def trim(self) -> int:
        """Drop entries every group has acknowledged from every stream read; returns how many
        were removed. Then decide again whether the legacy stream is read."""
        removed = 0
        for stream in list(self.reading):
            removed += await self._trim(stream)
        await self._check_legacy()
        return removed

    async def _trim(self, stream: str) -> int:
        groups = await self.redis.xinfo_groups(stream)
        marks: list[tuple[str, str | None]] = []
        for g in groups:
            last = _text(g["last-delivered-id"])
            pending = None
            if g["pending"]:
                summary = await self.redis.xpending(stream, _text(g["name"]))
                pending = _text(summary["min"]) if summary.get("min") else None
            marks.append((last, pending))
        floor = stream_floor(marks)
        if floor is None or floor == "0-0":
            return 0
        removed: int = await self.redis.xtrim(stream, minid=floor, approximate=False)
        await self._forget_idle_consumers(stream)
        return removed

    async def _forget_idle_consumers(self, stream: str) -> None:
        """Remove consumers of the group with nothing pending that have been idle for long."""
        for c in await self.redis.xinfo_consumers(stream, self.group):
            name = _text(c["name"])
            if name != self.consumer and not c["pending"] and c["idle"] > 10 * self.claim_idle_ms:
                await self.redis.xgroup_delconsumer(stream, self.group, name)

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
        log.info(
            "flusher %s on %s:{p0..p%d} (group %s)",
            self.consumer, self.legacy, len(self.streams) - 1, self.group,
        )  # fmt: skip
        writing: set[asyncio.Task[int]] = set()
        slots = asyncio.Semaphore(self.inserts)
        sampling = stream_gauges.start(self.redis, lambda: self.reading, self.group)
        try:
            while not self.stop.is_set():
                try:
                    await self._retry("flusher step", lambda: self._overlapped(writing, slots))
                except Exception:  # noqa: BLE001 - raised only once stop is set
                    break
        finally:
            await stream_gauges.stop(sampling)
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
    redis = redis_of(settings)
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
