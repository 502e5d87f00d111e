"""The one query engine: a typed event query compiled to parameterised ClickHouse SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.query.buckets import BUCKET_SQL
from services.stores.clickhouse import ClickHouse

EVENT_KINDS = ("clicks", "leads", "sales")

# Allow-listed dimensions: API name -> column. Only these names ever reach SQL.
DIMENSIONS = {
    "country": "country",
    "region": "region",
    "city": "city",
    "continent": "continent",
    "device": "device",
    "browser": "browser",
    "os": "os",
    "referrer": "referrer",
    "trigger": "trigger",
    "link": "link_id",
}
# Dimensions only clicks carry.
CLICK_DIMENSIONS = {
    **DIMENSIONS,
    "rule": "rule_id",
    "condition": "condition_id",
    "destination": "destination_url",
}
FILTERABLE = ("country", "device", "browser", "os", "trigger", "referrer", "continent")


@dataclass(frozen=True)
class DimensionFilter:
    """Keep (or, with exclude, drop) events whose dimension is one of values."""

    dimension: str
    values: tuple[str, ...]
    exclude: bool = False


@dataclass(frozen=True)
class EventQuery:
    """What to count over one event kind, for one workspace, in one UTC range."""

    kind: str
    workspace_id: int
    start: datetime
    end: datetime
    # When set, every metric is also computed for [compare_start, start) as prev_*.
    compare_start: datetime | None = None
    # None (totals), "time" (buckets of granularity in tz) or a dimension name.
    group_by: str | None = None
    granularity: str = "day"
    tz: str = "UTC"
    # None: every link of the workspace; a tuple: only these (empty: none).
    link_ids: tuple[int, ...] | None = None
    filters: tuple[DimensionFilter, ...] = ()
    include_bots: bool = False
    # sales: factor turning `amount` (minor units of `currency`) into the display currency.
    revenue_factors: dict[str, float] = field(default_factory=dict)
    order_by: str = "events"
    limit: int | None = None


def _dimensions(kind: str) -> dict[str, str]:
    return CLICK_DIMENSIONS if kind == "clicks" else DIMENSIONS


def _metrics(q: EventQuery, cond: str | None) -> list[str]:
    """Aggregates for the kind; with cond, the -If variants restricted to it."""

    def agg(fn: str, arg: str = "") -> str:
        if cond is None:
            return f"{fn}({arg})"
        return f"{fn}If({arg + ', ' if arg else ''}{cond})"

    metrics = [agg("count")]
    if q.kind == "clicks":
        metrics.append(agg("uniqExact", "visitor_id"))
    else:
        metrics.append("toUInt64(0)")
    if q.kind == "sales":
        metrics.append(
            agg("sum", "amount * transform(currency, %(fx_codes)s, %(fx_factors)s, 0.0)")
        )
    else:
        metrics.append("toFloat64(0)")
    return metrics


def compile_query(q: EventQuery) -> tuple[str, dict[str, Any]]:
    """SQL and parameters returning rows of (key, events, visitors, revenue[, prev_* …])."""
    if q.kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {q.kind!r}")
    dims = _dimensions(q.kind)
    params: dict[str, Any] = {
        "ws": q.workspace_id,
        "end": int(q.end.timestamp()),
        "start": int(q.start.timestamp()),
        "tz": q.tz,
        "fx_codes": list(q.revenue_factors),
        "fx_factors": [float(v) for v in q.revenue_factors.values()],
    }
    lower = "start" if q.compare_start is None else "compare_start"
    params["compare_start"] = int(q.compare_start.timestamp()) if q.compare_start else 0
    where = [
        "workspace_id = %(ws)s",
        f"timestamp >= toDateTime(%({lower})s)",
        "timestamp < toDateTime(%(end)s)",
    ]
    if q.link_ids is not None:
        params["links"] = tuple(q.link_ids)  # a tuple renders as an IN list
        where.append("link_id IN %(links)s")
    if not q.include_bots:
        where.append("is_bot = 0")
    for i, flt in enumerate(q.filters):
        column = dims[flt.dimension]
        params[f"f{i}"] = tuple(flt.values)
        where.append(f"{column} {'NOT IN' if flt.exclude else 'IN'} %(f{i})s")

    if q.compare_start is None:
        metrics = _metrics(q, None)
    else:
        current = "timestamp >= toDateTime(%(start)s)"
        previous = "timestamp < toDateTime(%(start)s)"
        metrics = _metrics(q, current) + _metrics(q, previous)

    if q.group_by is None:
        key = "0"
    elif q.group_by == "time":
        key = BUCKET_SQL[q.granularity].format(col="timestamp")
    else:
        key = dims[q.group_by]
    sql = f"SELECT {key} AS k, {', '.join(metrics)} FROM {q.kind} WHERE {' AND '.join(where)}"
    if q.group_by is not None:
        sql += " GROUP BY k"
        order = {"events": 2, "visitors": 3, "revenue": 4}[q.order_by]
        sql += f" ORDER BY {order} DESC, k" if q.group_by != "time" else " ORDER BY k"
        if q.limit is not None and q.group_by != "time":
            params["limit"] = q.limit
            sql += " LIMIT %(limit)s"
    return sql, params


@dataclass(frozen=True)
class Row:
    """One result row: key plus current (and previous-period) metrics."""

    key: Any
    events: int
    visitors: int
    revenue: float
    prev_events: int = 0
    prev_visitors: int = 0
    prev_revenue: float = 0.0


async def run(ch: ClickHouse, q: EventQuery) -> list[Row]:
    """Execute an event query; an empty link scope answers without touching ClickHouse."""
    if q.link_ids is not None and not q.link_ids:
        return [] if q.group_by is not None else [Row(0, 0, 0, 0.0)]
    sql, params = compile_query(q)
    rows = await ch.fetch(sql, params)
    return [Row(r[0], int(r[1]), int(r[2]), float(r[3]), *r[4:]) for r in rows]
