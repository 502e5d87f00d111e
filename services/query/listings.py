"""Raw event listings: one page of a kind's events in (timestamp, event_id) order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.query.predicates import EventScope
from services.stores.clickhouse import ClickHouse

# Columns a listing may return, per kind (every kind has event_id and timestamp first).
LIST_COLUMNS = {
    "clicks": (
        "event_id", "timestamp", "link_id", "visitor_id", "country", "region", "city",
        "continent", "device", "browser", "os", "referrer", "referrer_url", "trigger", "rule_id",
        "condition_id", "destination_url", "is_bot",
    ),
    "leads": (
        "event_id", "timestamp", "link_id", "click_id", "customer_id", "event_name", "country",
        "city", "device", "browser", "os", "referrer", "trigger", "visitor_id",
    ),
    "sales": (
        "event_id", "timestamp", "link_id", "click_id", "customer_id", "event_name", "amount",
        "currency", "invoice_id", "country", "city", "device", "browser", "os", "referrer",
        "trigger", "visitor_id",
    ),
}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ListQuery(EventScope):
    """Raw events of one kind in (timestamp, event_id) order, one page after a position."""

    columns: tuple[str, ...]
    limit: int
    include_bots: bool = True
    # Page position: events strictly after (or, descending, before) this (epoch seconds, id).
    after: tuple[int, int] | None = None
    descending: bool = False


def compile_list(q: ListQuery) -> tuple[str, dict[str, Any]]:
    """SQL and parameters of one page of raw events."""
    unknown = set(q.columns) - set(LIST_COLUMNS[q.kind])
    if unknown:
        raise ValueError(f"columns not allowed for {q.kind}: {sorted(unknown)}")
    where, params = q.where()
    if q.after is not None:
        op = "<" if q.descending else ">"
        params["after_ts"], params["after_id"] = q.after
        where.append(
            f"(timestamp {op} toDateTime(%(after_ts)s) OR (timestamp = toDateTime(%(after_ts)s)"
            f" AND event_id {op} %(after_id)s))"
        )
    direction = "DESC" if q.descending else "ASC"
    columns = ", ".join(
        "toUInt32(timestamp)" if column == "timestamp" else column for column in q.columns
    )
    params["limit"] = q.limit
    sql = (
        f"SELECT {columns} FROM {q.kind} WHERE {' AND '.join(where)}"
        f" ORDER BY timestamp {direction}, event_id {direction} LIMIT %(limit)s"
    )
    return sql, params


async def run_list(ch: ClickHouse, q: ListQuery) -> list[dict[str, Any]]:
    """One page of raw events as dicts keyed by column (timestamp as epoch seconds)."""
    if q.link_ids is not None and not q.link_ids:
        return []
    sql, params = compile_list(q)
    return [dict(zip(q.columns, row, strict=True)) for row in await ch.fetch(sql, params)]
