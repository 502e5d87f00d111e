"""The live event feed: a capped Redis Stream per workspace, listed backwards and followed.

Keys (all under the workspace's hash tag, so one workspace's keys share a cluster slot):

- ``lp:live:{<workspace>}`` — Stream, one entry per accepted batch of one kind, fields ``k``
  (the kind), ``n`` (its number of events) and ``r`` (their table rows as the ingestion stream
  encodes them, one a line, so accepting an event encodes it once). Readers turn rows into the
  feed's fields; only the LiveEvent fields ever leave the service.
- the stats keys of ``services.live.stats`` (written by the same ``publish``).

Every event has a position, its cursor: an entry's id is the position of its first event and
the others follow it in the id's sequence part (entry ``<t>-<s>`` holds ``<t>-<s>`` …
``<t>-<s+n-1>``); the next entry takes the position after the last one's last event, so a
stream's positions are ``<t>-0``, ``<t>-1``, … with ``t`` the time the stream began. Entries
written by earlier versions hold one event each, their id its position; the stream goes on
after them. The stream is trimmed by events (XADD MINID), to about ``STREAM_MAXLEN`` of them.

A cursor is opaque to clients (today a position such as ``1732363626000-42``). Resuming a
subscription from a cursor older than what the stream still holds fails with OUT_OF_RANGE on
field ``cursor`` rather than silently skipping the trimmed events (a cursor exactly at the
trim boundary may be refused too: the stream does not record what trimming cut).

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
from collections.abc import AsyncGenerator, Iterable, Iterator, Sequence
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

# Events kept per workspace (approximate trimming): about 5 MB at ~250 bytes an event.
STREAM_MAXLEN = 20_000
# An idle workspace's stream disappears after a day without events.
STREAM_TTL_SECONDS = 86_400
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
KINDS = frozenset({"click", "lead", "sale"})
# Entries read per XRANGE / XREVRANGE / XREAD round trip at most: an entry holds one accepted
# batch, up to MAX_INGEST_BATCH events.
READ_BATCH = 64
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


# KEYS[1]: the feed stream; ARGV: events to keep, TTL, the kind, the encoded rows (one a line),
# their number. One entry per batch: appending an entry per event cost Redis more than all the
# rest of accepting it. The entry takes the position after the last entry's last event (an
# entry without ``n`` holds one); the first entry of a stream takes the time and sequence 0.
_APPEND = """
local key, keep, kind, n = KEYS[1], tonumber(ARGV[1]), ARGV[3], tonumber(ARGV[5])
local ms, seq = nil, 0
local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1]
if last then
  local fields, held = last[2], 1
  for i = 1, #fields, 2 do
    if fields[i] == 'n' then held = tonumber(fields[i + 1]) end
  end
  local dash = string.find(last[1], '-', 1, true)
  ms = string.sub(last[1], 1, dash - 1)
  seq = tonumber(string.sub(last[1], dash + 1)) + held
else
  local now = redis.call('TIME')
  ms = now[1] .. string.format('%03d', math.floor(now[2] / 1000))
end
local id = ms .. '-' .. string.format('%d', seq)
if seq + n > keep then
  local floor = ms .. '-' .. string.format('%d', seq + n - keep)
  redis.call('XADD', key, 'MINID', '~', floor, id, 'k', kind, 'n', n, 'r', ARGV[4])
else
  redis.call('XADD', key, id, 'k', kind, 'n', n, 'r', ARGV[4])
end
redis.call('EXPIRE', key, ARGV[2])
return id
"""


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
    count = rows.count(b"\n") + 1
    scripts.queue(pipe, _APPEND, [key], [STREAM_MAXLEN, STREAM_TTL_SECONDS, kind, rows, count])
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
        raise errors.not_found(f"campaign {campaign_id}", "campaign_id", in_workspace=True)
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


# An event's position in its workspace's stream: (time part, sequence part) of its cursor.
Position = tuple[int, int]


def _position(cursor: str) -> Position:
    ms, _, seq = cursor.partition("-")
    return int(ms), int(seq or 0)


def _cursor_text(position: Position) -> str:
    return f"{position[0]}-{position[1]}"


@dataclass(frozen=True)
class _Entry:
    """A stream entry: the position of its first event, its kind and its events' rows
    (kind None: an entry of a version that stored one event's feed JSON)."""

    start: Position
    kind: str | None
    rows: list[bytes]

    @property
    def end(self) -> Position:
        """Position of its last event."""
        return self.start[0], self.start[1] + len(self.rows) - 1

    def event(self, at: int) -> dict[str, Any]:
        """The feed fields of its event at index at."""
        if self.kind is None:
            return orjson.loads(self.rows[at]) if self.rows[at] else {}
        return feed_fields(self.kind, decode_row(self.kind, self.rows[at]))

    def after(self, position: Position) -> Iterator[tuple[Position, dict[str, Any]]]:
        """Its events after position, oldest first."""
        ms, seq = self.start
        for at in range(len(self.rows)):
            if (ms, seq + at) > position:
                yield (ms, seq + at), self.event(at)

    def before(self, position: Position | None) -> Iterator[tuple[Position, dict[str, Any]]]:
        """Its events before position (all when None), newest first."""
        ms, seq = self.start
        for at in reversed(range(len(self.rows))):
            if position is None or (ms, seq + at) < position:
                yield (ms, seq + at), self.event(at)


def _entry(entry_id: bytes | str, fields: dict[Any, Any]) -> _Entry:
    start = _position(_text(entry_id))
    rows = fields.get(b"r", fields.get("r"))
    kind = fields.get(b"k", fields.get("k"))
    if rows is not None and kind is not None and _text(kind) in TABLES:
        data = rows if isinstance(rows, bytes) else rows.encode()
        return _Entry(start, _text(kind), data.split(b"\n"))
    legacy = fields.get(b"e", fields.get("e")) or b""
    return _Entry(start, None, [legacy if isinstance(legacy, bytes) else legacy.encode()])


def _entries(reply: Iterable[tuple[Any, dict[Any, Any]]]) -> list[_Entry]:
    return [_entry(entry_id, fields) for entry_id, fields in reply if fields]


def to_live_event(position: Position, event: dict[str, Any]) -> pb.live_pb2.LiveEvent:
    """The LiveEvent message of a feed event at position."""
    message = pb.live_pb2.LiveEvent(cursor=_cursor_text(position))
    for name in _INT_FIELDS:
        if event.get(name) is not None:
            setattr(message, name, int(event[name]))
    for name in _STRING_FIELDS:
        if event.get(name) is not None:
            setattr(message, name, str(event[name]))
    return message


# Entries per XREVRANGE of a listing: a few at first (an entry may hold a thousand events),
# doubling per round trip up to READ_BATCH.
_LIST_FIRST_READ = 8


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
    before = _position(cursor) if cursor else None
    upper, count = cursor or "+", _LIST_FIRST_READ  # from the entry holding the cursor
    while True:
        reply = await redis.xrevrange(key, max=upper, min="-", count=count)
        for entry in _entries(reply):
            for position, event in entry.before(before):
                if filters.match(event):
                    response.events.append(to_live_event(position, event))
                    if len(response.events) == limit:
                        response.next_cursor = _cursor_text(position)
                        return response
        if len(reply) < count:
            return response  # the start of the stream: no further page
        upper, count = f"({_text(reply[-1][0])}", min(count * 2, READ_BATCH)


async def _start_after(redis: Redis, key: str, cursor: str) -> Position:
    """The position to follow after: cursor once checked against the stream, else the
    position of the stream's last event."""
    if not cursor:
        last = _entries(await redis.xrevrange(key, max="+", min="-", count=1))
        return last[0].end if last else (0, 0)
    try:
        info = await redis.xinfo_stream(key)
    except Exception as exc:  # no such key: the stream expired or never existed
        if "no such key" not in str(exc).lower():
            raise
        info = None
    position = _position(cursor)
    if info is not None:
        deleted = _position(_text(info.get("max-deleted-entry-id") or b"0-0"))
        first = info.get("first-entry")
        # Trimming drops entries from the head without recording what it dropped: when
        # entries were trimmed, a cursor before the first kept one may have missed some.
        trimmed = int(info.get("entries-added") or 0) > int(info.get("length") or 0)
        if position < deleted or (
            trimmed and first is not None and position < _position(_text(first[0]))
        ):
            raise _cursor_expired()
    elif position[0] < (time.time() - STREAM_TTL_SECONDS) * 1000:
        raise _cursor_expired()
    return position


def _cursor_expired() -> errors.ApiError:
    return errors.ApiError(
        grpc.StatusCode.OUT_OF_RANGE,
        "cursor_expired",
        "the feed no longer holds events after this cursor; resubscribe without cursor"
        " (and list the recent events with GET /api/analytics/live)",
        "cursor",
    )


async def _entries_after(redis: Redis, key: str, position: Position) -> tuple[list[_Entry], bool]:
    """The entries that may hold events after position (the one holding position, then up to
    READ_BATCH later ones) and whether more may follow them."""
    cursor = _cursor_text(position)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xrevrange(key, max=cursor, min="-", count=1)
        pipe.xrange(key, min=f"({cursor}", max="+", count=READ_BATCH)
        holding, later = await pipe.execute()
    return _entries(holding + later), len(later) == READ_BATCH


async def _read_after(redis: Redis, key: str, position: Position, block_ms: int) -> list[_Entry]:
    """Entries after the one holding position (position is an entry's last event), waiting up
    to block_ms for the first."""
    reply = await redis.xread({key: _cursor_text(position)}, count=READ_BATCH, block=block_ms)
    return [entry for _stream, items in reply or () for entry in _entries(items)]


def _matching_after(
    entries: list[_Entry], last: Position, filters: Filters
) -> tuple[list[pb.live_pb2.LiveEvent], Position]:
    """The matching events of entries after position last, and the position read up to."""
    matched = []
    for entry in entries:
        matched += [to_live_event(p, e) for p, e in entry.after(last) if filters.match(e)]
        last = max(last, entry.end)
    return matched, last


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
    catching_up = bool(cursor)  # the cursor may be inside an entry
    while True:
        if catching_up:
            entries, catching_up = await _entries_after(redis, key, last)
        else:
            entries = await _read_after(redis, key, last, block_ms)
        matched, last = _matching_after(entries, last, filters)
        for message in matched:
            yield message


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
            last = await _start_after(self.redis, self.key, "")
            self.ready.set()
            while True:
                entries = await _read_after(self.redis, self.key, last, self.block_ms)
                if entries:
                    last = entries[-1].end
                    self._deliver(entries)
        except Exception as exc:  # Redis failed: every subscriber ends with UNAVAILABLE
            self.failure = exc
            self.ready.set()
            for inbox in self.inboxes:
                inbox.queue.put_nowait(_Failed(exc))

    def _deliver(self, entries: list[_Entry]) -> None:
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
                    entries, catch_up = await _entries_after(self.redis, key, last)
                    matched, last = _matching_after(entries, last, filters)
                    for message in matched:
                        yield message
                    continue  # until caught up; the inbox may have lagged meanwhile
                item = await inbox.queue.get()
                if isinstance(item, _Failed):
                    raise errors.unavailable(f"the live feed is unavailable: {item.error}")
                position, event, message = item
                if position <= last:
                    continue
                last = position
                if filters.match(event):
                    yield message
        finally:
            self._leave(workspace_id, reader, inbox)
