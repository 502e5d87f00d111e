"""Validated events on their way into the ingestion stream: encoded rows plus what the stream,
the feed, the stats and the attribution cache need of each event."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from services.live import rows
from services.live.stats import StatEvent
from services.live.tables import TABLES


@dataclass(slots=True)
class Accepted:
    """Validated events of one kind ready to enqueue: their encoded rows and, in parallel lists,
    what the stream, the feed and the stats need of each."""

    kind: str
    rows: list[bytes] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)
    # The client chose the id: a second event with it is a duplicate.
    claimed: list[bool] = field(default_factory=list)
    stats: list[StatEvent] = field(default_factory=list)
    # Field in the day's attribution hash (clicks: click id; leads: customer id; sales: none).
    cache_fields: list[str] = field(default_factory=list)
    # The values of those fields; empty: each row itself (what a click caches).
    cache_values: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def extend(self, other: Accepted) -> None:
        """Append other's events (of the same kind) after these."""
        self.rows += other.rows
        self.event_ids += other.event_ids
        self.claimed += other.claimed
        self.stats += other.stats
        self.cache_fields += other.cache_fields
        self.cache_values += other.cache_values

    def subset(self, positions: Sequence[int]) -> Accepted:
        """The events at positions (0-based), in that order."""

        def pick(values: list[Any]) -> list[Any]:
            return [values[at] for at in positions] if values else []

        return Accepted(
            self.kind, pick(self.rows), pick(self.event_ids), pick(self.claimed),
            pick(self.stats), pick(self.cache_fields), pick(self.cache_values),
        )  # fmt: skip


def accepted_one(
    kind: str,
    row: dict[str, Any],
    *,
    claimed: bool,
    cache_field: str = "",
    cache_value: bytes | None = None,
) -> Accepted:
    """One event of a row (column -> value, the timestamp a datetime) ready to enqueue."""
    table = TABLES[kind]
    values = [row[c] for c in table.columns]
    seconds = int(values[table.timestamp_at].timestamp())
    values[table.timestamp_at] = seconds
    return Accepted(
        kind,
        [rows.encode(values)],
        [int(row["event_id"])],
        [claimed],
        [(kind, seconds, row["link_id"], row.get("visitor_id", ""))],
        [cache_field] if cache_field else [],
        [cache_value] if cache_value is not None else [],
    )
