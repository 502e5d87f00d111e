"""An event's table row as it travels from ingestion to ClickHouse: a JSON array.

The array holds the row's values in the kind's column order (`services.live.tables`), the
timestamp in epoch seconds. The ingestion stream, the live feed and the click attribution cache
all hold this same encoding. The flusher turns a batch of them into the CSV ClickHouse reads
(`FORMAT CSV`) without decoding them: a JSON array without a backslash holds no quote, newline
or control character in its strings, so between its brackets it already is a CSV record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from services.live.tables import TABLES


def encode(values: Sequence[Any]) -> bytes:
    """The encoded row of its values (ints and strings, in column order)."""
    return orjson.dumps(values)


def decode(kind: str, data: bytes | str) -> tuple[Any, ...]:
    """The row's values of an encoded row."""
    values = orjson.loads(data)
    if isinstance(values, dict):  # written by a version that encoded rows as objects
        return tuple(values[c] for c in TABLES[kind].columns)
    return tuple(values)


def decode_lines(kind: str, data: bytes) -> list[tuple[Any, ...]]:
    """The rows of newline-separated encoded rows."""
    return [decode(kind, line) for line in data.split(b"\n") if line]


def ids(line: bytes) -> tuple[int, int]:
    """(workspace id, event id) of an encoded row: the first two columns of every table."""
    event_id, workspace_id = orjson.loads(line)[:2]
    return int(workspace_id), int(event_id)


def _csv_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    return str(int(value))


def to_csv(kind: str, data: bytes) -> bytes:
    """The CSV records (newline-terminated) of newline-separated encoded rows."""
    data = data.strip(b"\n")
    if data[:1] == b"[" and b"\\" not in data:
        return data[1:-1].replace(b"]\n[", b"\n") + b"\n"
    return b"".join(
        ",".join(map(_csv_value, row)).encode() + b"\n" for row in decode_lines(kind, data)
    )
