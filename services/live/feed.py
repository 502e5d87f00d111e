"""The live event feed: a capped Redis Stream per workspace, listed backwards and followed.

Keys (all under the workspace's hash tag, so one workspace's keys share a cluster slot):

- ``lp:live:{<workspace>}`` — Stream, one entry per accepted event, fields ``k`` (its kind)
  and ``r`` (its table row as the ingestion stream encodes it, so accepting an event encodes
  it once); XADD with ``MAXLEN ~ STREAM_MAXLEN``; the entry id is the feed cursor. Readers
  turn rows into the feed's fields; only the LiveEvent fields ever leave the service.
- the stats keys of ``services.live.stats`` (written by the same ``publish``).

A cursor is an opaque position (today a stream entry id such as ``1732363626000-0``).
Resuming a subscription from a cursor older than what the stream still holds fails with
OUT_OF_RANGE on field ``cursor`` rather than silently skipping the trimmed events (a cursor
exactly at the trim boundary may be refused too: the stream does not record what MAXLEN cut).

Two ways to follow a feed, same contract: ``subscribe()`` runs one XREAD loop per subscriber;
``FeedHub.subscribe()`` shares one XREAD loop per workspace among the subscribers of a
process (decoding each entry once), and a subscriber that falls more than ``HUB_INBOX`` events
behind re-reads from the stream instead of buffering more. A campaign filter is resolved to
its links once, when the subscription starts.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc
import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from services import errors, pb
from services.live import scripts, stats
from services.live.rows import decode as decode_row
from services.live.stats import KEY_PREFIX, live_stats, stream_key
from services.live.tables import TABLES

__all__ = ["KEY_PREFIX", "FeedHub", "list_live", "live_stats", "publish", "stream_key", "subscribe"]

# Entries kept per workspace (approximate trimming): about 5 MB at ~250 bytes an entry.
STREAM_MAXLEN = 20_000
# An idle workspace's stream disappears after a day without events.
STREAM_TTL_SECONDS = 86_400
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
KINDS = frozenset({"click", "lead", "sale"})
# Entries read per XREVRANGE / XREAD round trip.
READ_BATCH = 500
# Server-side block of each XREAD; below the client's reply timeout (5 s by default).
BLOCK_MS = 1_000
_CURSOR = re.compile(r"^\d{1,20}-\d{1,20}$")

_STRING_FIELDS = (
    "kind",
    "timestamp",
    "country",
    "city",
    "device",
    "browser",
    "os",
    "referrer",
    "trigger",
    "visitor_id",
    "customer_id",
    "currency",
)
_INT_FIELDS = ("event_id", "link_id", "amount")


# KEYS[1]: the feed stream; ARGV: MAXLEN, TTL, the kind, the encoded rows (one a line).
# One script call per batch: appending each entry from the client costs a round of command
# encoding and reply parsing per event, which dominated ingestion.
_APPEND = (
    scripts.SPLIT_LINES
    + """
local key, maxlen, kind = KEYS[1], ARGV[1], ARGV[3]
local rows = split_lines(ARGV[4])
for _, row in ipairs(rows) do
  redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', 'k', kind, 'r', row)
end
redis.call('EXPIRE', key, ARGV[2])
return #rows
"""
)


def publish(
    pipe: Pipeline,
    workspace_id: int,
    kind: str,
    rows: bytes,
    stat_events: list[stats.StatEvent],
    *,
    prefix: str = KEY_PREFIX,
    now: float | None = None,
) -> None:
    """Queue on pipe the commands adding events of one kind to the workspace's feed and live
    stats: rows are the events' encoded table rows (`services.live.rows`), one a line."""
    if not rows:
        return
    key = stream_key(workspace_id, prefix)
    scripts.queue(pipe, _APPEND, [key], [STREAM_MAXLEN, STREAM_TTL_SECONDS, kind, rows])
    stats.record(pipe, key, stat_events, time.time() if now is None else now)


@dataclass(frozen=True)
class Filters:
    """Which events of the workspace a request wants."""

    link_ids: frozenset[int] | None
    kind: str

    def match(self, event: dict[str, Any]) -> bool:
        """True when event passes every filter."""
        if self.kind and event.get("kind") != self.kind:
            return False
        return self.link_ids is None or event.get("link_id") in self.link_ids


async def resolve_filters(
    pg: asyncpg.Pool | None, workspace_id: int, request: pb.live_pb2.LiveRequest
) -> Filters:
    """Validated filters of request; a campaign becomes the set of its links."""
    kind = request.kind.strip().lower()
    if kind and kind not in KINDS:
        raise errors.invalid_argument("kind", "kind must be click, lead or sale")
    link_ids: set[int] | None = None
    if request.HasField("link_id"):
        if request.link_id <= 0:
            raise errors.invalid_argument("link_id", "link_id must be a positive integer")
        link_ids = {request.link_id}
    if request.HasField("campaign_id"):
        if pg is None:
            raise errors.unavailable("campaign filter needs PostgreSQL")
        in_campaign = await _campaign_links(pg, workspace_id, request.campaign_id)
        link_ids = in_campaign if link_ids is None else link_ids & in_campaign
    return Filters(None if link_ids is None else frozenset(link_ids), kind)


async def _campaign_links(pg: asyncpg.Pool, workspace_id: int, campaign_id: int) -> set[int]:
    rows = await pg.fetch(
        "SELECT c.id AS campaign, l.id AS link FROM campaigns c"
        " LEFT JOIN links l ON l.campaign_id = c.id AND l.workspace_id = c.workspace_id"
        " WHERE c.workspace_id = $1 AND c.id = $2",
        workspace_id,
        campaign_id,
    )
    if not rows:
        raise errors.ApiError(
            grpc.StatusCode.NOT_FOUND,
            "not_found",
            f"campaign {campaign_id} not found in this workspace",
            "campaign_id",
        )
    return {row["link"] for row in rows if row["link"] is not None}


def _limit(request: pb.live_pb2.LiveRequest) -> int:
    if not request.HasField("limit"):
        return DEFAULT_LIMIT
    if not 1 <= request.limit <= MAX_LIMIT:
        raise errors.invalid_argument("limit", f"limit must be between 1 and {MAX_LIMIT}")
    return request.limit


def _cursor(request: pb.live_pb2.LiveRequest) -> str:
    cursor = request.cursor.strip()
    if cursor and not _CURSOR.match(cursor):
        raise errors.invalid_argument("cursor", "cursor is not a cursor of this feed")
    return cursor


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def feed_fields(kind: str, values: Sequence[Any]) -> dict[str, Any]:
    """The feed's fields of an event from its kind and table row (timestamp in epoch seconds)."""
    event = dict(zip(TABLES[kind].columns, values, strict=True))
    event["kind"] = kind
    event["timestamp"] = datetime.fromtimestamp(event["timestamp"], UTC).isoformat()
    return event


def _decode(entry_id: bytes | str, fields: dict[Any, Any]) -> tuple[str, dict[str, Any]]:
    cursor = _text(entry_id)
    row = fields.get(b"r", fields.get("r"))
    kind = fields.get(b"k", fields.get("k"))
    if row is not None and kind is not None and _text(kind) in TABLES:
        return cursor, feed_fields(_text(kind), decode_row(_text(kind), row))
    legacy = fields.get(b"e", fields.get("e"))  # entries of versions that stored feed JSON
    return cursor, orjson.loads(legacy) if legacy else {}


def to_live_event(cursor: str, event: dict[str, Any]) -> pb.live_pb2.LiveEvent:
    """The LiveEvent message of a stored feed entry."""
    message = pb.live_pb2.LiveEvent(cursor=cursor)
    for name in _INT_FIELDS:
        if event.get(name) is not None:
            setattr(message, name, int(event[name]))
    for name in _STRING_FIELDS:
        if event.get(name) is not None:
            setattr(message, name, str(event[name]))
    return message


def _matching(
    entries: Iterable[tuple[Any, dict[Any, Any]]], filters: Filters
) -> Iterable[tuple[str, dict[str, Any]]]:
    for entry_id, fields in entries:
        cursor, event = _decode(entry_id, fields)
        if filters.match(event):
            yield cursor, event


async def list_live(
    redis: Redis,
    workspace_id: int,
    request: pb.live_pb2.LiveRequest,
    pg: asyncpg.Pool | None = None,
    *,
    prefix: str = KEY_PREFIX,
) -> pb.live_pb2.LiveResponse:
    """The workspace's most recent matching events, newest first, paged backwards by cursor."""
    limit = _limit(request)
    cursor = _cursor(request)
    filters = await resolve_filters(pg, workspace_id, request)
    key = stream_key(workspace_id, prefix)
    response = pb.live_pb2.LiveResponse()
    if filters.link_ids is not None and not filters.link_ids:
        return response  # a campaign without links
    upper = f"({cursor}" if cursor else "+"
    while True:
        entries = await redis.xrevrange(key, max=upper, min="-", count=READ_BATCH)
        for position, event in _matching(entries, filters):
            response.events.append(to_live_event(position, event))
            if len(response.events) == limit:
                response.next_cursor = position
                return response
        if len(entries) < READ_BATCH:
            return response  # the start of the stream: no further page
        upper = f"({_text(entries[-1][0])}"


async def _start_after(redis: Redis, key: str, cursor: str) -> str:
    """The id to read after: cursor once checked against the stream, else its current end."""
    if not cursor:
        last = await redis.xrevrange(key, max="+", min="-", count=1)
        return _text(last[0][0]) if last else "0-0"
    try:
        info = await redis.xinfo_stream(key)
    except Exception as exc:  # no such key: the stream expired or never existed
        if "no such key" not in str(exc).lower():
            raise
        info = None
    if info is not None:
        position = _id_tuple(cursor)
        deleted = _id_tuple(_text(info.get("max-deleted-entry-id") or b"0-0"))
        first = info.get("first-entry")
        # MAXLEN trims from the head without recording what it dropped: when entries were
        # trimmed, a cursor before the first kept entry may have missed some of them.
        trimmed = int(info.get("entries-added") or 0) > int(info.get("length") or 0)
        if position < deleted or (
            trimmed and first is not None and position < _id_tuple(_text(first[0]))
        ):
            raise _cursor_expired()
    elif _id_tuple(cursor)[0] < (time.time() - STREAM_TTL_SECONDS) * 1000:
        raise _cursor_expired()
    return cursor


def _cursor_expired() -> errors.ApiError:
    return errors.ApiError(
        grpc.StatusCode.OUT_OF_RANGE,
        "cursor_expired",
        "the feed no longer holds events after this cursor; resubscribe without cursor"
        " (and list the recent events with GET /api/analytics/live)",
        "cursor",
    )


def _id_tuple(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


async def subscribe(
    redis: Redis,
    workspace_id: int,
    request: pb.live_pb2.LiveRequest,
    pg: asyncpg.Pool | None = None,
    *,
    prefix: str = KEY_PREFIX,
    block_ms: int = BLOCK_MS,
) -> AsyncGenerator[pb.live_pb2.LiveEvent, None]:
    """The workspace's matching events as they are accepted, after request.cursor if given."""
    cursor = _cursor(request)
    filters = await resolve_filters(pg, workspace_id, request)
    key = stream_key(workspace_id, prefix)
    last = await _start_after(redis, key, cursor)
    while True:
        reply = await redis.xread({key: last}, count=READ_BATCH, block=block_ms)
        for _stream, entries in reply or ():
            if not entries:
                continue
            last = _text(entries[-1][0])
            for position, event in _matching(entries, filters):
                yield to_live_event(position, event)


# Subscriber inboxes hold at most this many events before the subscriber is made to catch up
# from the stream itself (nothing lost, no unbounded memory).
HUB_INBOX = 5_000


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
            last = await _start_after(self.redis, self.key, "")
            self.ready.set()
            while True:
                reply = await self.redis.xread(
                    {self.key: last}, count=READ_BATCH, block=self.block_ms
                )
                for _stream, entries in reply or ():
                    if entries:
                        last = _text(entries[-1][0])
                        self._deliver(entries)
        except Exception as exc:  # Redis failed: every subscriber ends with UNAVAILABLE
            self.failure = exc
            self.ready.set()
            for inbox in self.inboxes:
                inbox.queue.put_nowait(_Failed(exc))

    def _deliver(self, entries: list[tuple[Any, dict[Any, Any]]]) -> None:
        items = []
        for entry_id, fields in entries:
            position, event = _decode(entry_id, fields)
            items.append((_id_tuple(position), event, to_live_event(position, event)))
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
        block_ms: int = BLOCK_MS,
        inbox_size: int = HUB_INBOX,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.block_ms = block_ms
        self.inbox_size = inbox_size
        self._readers: dict[int, _Reader] = {}

    def followed(self) -> int:
        """Number of workspaces with a running reader."""
        return len(self._readers)

    def _join(self, workspace_id: int) -> tuple[_Reader, _Inbox]:
        reader = self._readers.get(workspace_id)
        if reader is None or reader.failure is not None or reader.task.done():
            reader = _Reader(
                self.redis, stream_key(workspace_id, self.prefix), self.block_ms, self.inbox_size
            )
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
        request: pb.live_pb2.LiveRequest,
        pg: asyncpg.Pool | None = None,
    ) -> AsyncGenerator[pb.live_pb2.LiveEvent, None]:
        """Same contract as subscribe(): the workspace's matching events after request.cursor."""
        cursor = _cursor(request)
        filters = await resolve_filters(pg, workspace_id, request)
        key = stream_key(workspace_id, self.prefix)
        reader, inbox = self._join(workspace_id)
        try:
            # joined first: what is appended from now on reaches the inbox; what came before
            # is read from the stream (catch-up), duplicates dropped by position
            last = await _start_after(self.redis, key, cursor)
            await reader.ready.wait()
            catch_up = True
            while True:
                if inbox.lagged:
                    self._leave(workspace_id, reader, inbox)
                    reader, inbox = self._join(workspace_id)
                    await reader.ready.wait()
                    catch_up = True
                if catch_up:
                    catch_up = False
                    while True:
                        entries = await self.redis.xrange(
                            key, min=f"({last}", max="+", count=READ_BATCH
                        )
                        if entries:
                            last = _text(entries[-1][0])
                        for position, event in _matching(entries, filters):
                            yield to_live_event(position, event)
                        if len(entries) < READ_BATCH:
                            break
                    continue
                item = await inbox.queue.get()
                if isinstance(item, _Failed):
                    raise errors.unavailable(f"the live feed is unavailable: {item.error}")
                position, event, message = item
                if position <= _id_tuple(last):
                    continue
                last = message.cursor
                if filters.match(event):
                    yield message
        finally:
            self._leave(workspace_id, reader, inbox)
