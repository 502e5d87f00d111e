"""Entries of a feed stream: positions and cursors, their events, and LiveEvent messages."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from services import protos
from services.live.rows import decode as decode_row
from services.live.tables import TABLES

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


def as_text(value: bytes | str) -> str:
    """A Redis reply value as text."""
    return value.decode() if isinstance(value, bytes) else value


def feed_fields(kind: str, values: Sequence[Any]) -> dict[str, Any]:
    """The feed's fields of an event from its kind and table row (timestamp in epoch seconds)."""
    event = dict(zip(TABLES[kind].columns, values, strict=True))
    event["kind"] = kind
    event["timestamp"] = datetime.fromtimestamp(event["timestamp"], UTC).isoformat()
    return event


# An event's position in its workspace's stream: (time part, sequence part) of its cursor.
Position = tuple[int, int]


def position_of(cursor: str) -> Position:
    """The position a cursor names."""
    ms, _, seq = cursor.partition("-")
    return int(ms), int(seq or 0)


def cursor_text(position: Position) -> str:
    """The cursor of a position."""
    return f"{position[0]}-{position[1]}"


@dataclass(frozen=True)
class Entry:
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


def entry_of(entry_id: bytes | str, fields: dict[Any, Any]) -> Entry:
    """The Entry of a stream entry's id and fields (of this version or an earlier one)."""
    start = position_of(as_text(entry_id))
    rows = fields.get(b"r", fields.get("r"))
    kind = fields.get(b"k", fields.get("k"))
    if rows is not None and kind is not None and as_text(kind) in TABLES:
        data = rows if isinstance(rows, bytes) else rows.encode()
        return Entry(start, as_text(kind), data.split(b"\n"))
    legacy = fields.get(b"e", fields.get("e")) or b""
    return Entry(start, None, [legacy if isinstance(legacy, bytes) else legacy.encode()])


def entries_of(reply: Iterable[tuple[Any, dict[Any, Any]]]) -> list[Entry]:
    """The entries of an XRANGE / XREVRANGE reply, skipping deleted ones."""
    return [entry_of(entry_id, fields) for entry_id, fields in reply if fields]


def to_live_event(position: Position, event: dict[str, Any]) -> protos.live_pb2.LiveEvent:
    """The LiveEvent message of a feed event at position."""
    message = protos.live_pb2.LiveEvent(cursor=cursor_text(position))
    for name in _INT_FIELDS:
        if event.get(name) is not None:
            setattr(message, name, int(event[name]))
    if not message.link_id:
        message.ClearField("link_id")  # 0: a sale attributed to no click's link
    for name in _STRING_FIELDS:
        if event.get(name) not in (None, ""):  # unknown: null, as in every answer
            setattr(message, name, str(event[name]))
    return message
