"""The one query engine: a typed event query compiled to parameterised ClickHouse SQL."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.query.buckets import bucket_sql, whole_hour_offsets
from services.query.predicates import EVENT_KINDS, EventScope, dimensions
from services.stores.clickhouse import ClickHouse

METRIC_ORDER = ("events", "visitors", "revenue")


@dataclass(frozen=True)
class EventQuery(EventScope):
    """What to count over one event kind, for one workspace, in one UTC range."""

    # () for totals; else one or more of "time" (buckets of granularity in tz) and dimensions.
    group_by: tuple[str, ...] = ()
    granularity: str = "day"
    tz: str = "UTC"
    # sales: factor turning `amount` (minor units of `currency`) into the display currency.
    revenue_factors: dict[str, float] = field(default_factory=dict)
    order_by: str = "events"
    limit: int | None = None
    # For the "group" dimension: (link_id, group_id) pairs (folders, tags, campaigns); a link
    # may be in several groups (tags) and counts in each; links in none are left out.
    link_groups: tuple[tuple[int, int], ...] = ()
    # Unique visitors are most of a clicks query's cost: off where the answer does not show them.
    with_visitors: bool = True
    # For the campaign, folder and tag dimensions (several at once): name -> (link_id, group_id)
    # pairs; links in none count under group 0.
    groupings: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = ()
    # Caps the rows returned (the query API asks one more than its group cap).
    max_rows: int | None = None
    # ClickHouse's max_execution_time for the statement (whole seconds: 18.16 reads 0.5 as 0,
    # no limit).
    timeout_seconds: int | None = None


@dataclass(frozen=True)
class Source:
    """A table an EventQuery can read: raw events or an hourly rollup, and how to aggregate it."""

    table: str
    time: str
    events: str  # (function, argument) templates, see _metrics
    visitors: str
    amount: str


# Unique visitors everywhere (raw events and rollups alike, so every route estimates them the
# same way): a sketch over the 64-bit hash of the visitor id, exact up to 256 visitors, an HLL of
# 4,096 cells beyond, whose hourly states merge in microseconds. The rollups of migration 0003
# keep states of this same function.
VISITORS = "uniqCombined(12)"
RAW = {
    kind: Source(kind, "timestamp", "count()", f"{VISITORS}(visitor_hash)", "amount")
    for kind in EVENT_KINDS
}
VISITORS_MERGE = VISITORS.replace("(", "Merge(", 1)  # uniqCombinedMerge(12)
# Per link (and hour): what queries by link, or by group of links, read.
ROLLUP = {
    "clicks": Source(
        "clicks_hourly_link", "hour", "countMerge(events)", f"{VISITORS_MERGE}(visitors)", ""
    ),
    "leads": Source("leads_hourly", "hour", "sum(events)", "", ""),
    "sales": Source("sales_hourly", "hour", "sum(events)", "", "amount"),
}
# Per workspace (and hour): clicks over every link, a few thousand states for months.
WORKSPACE_ROLLUP = {
    "clicks": Source(
        "clicks_hourly_workspace", "hour", "countMerge(events)", f"{VISITORS_MERGE}(visitors)", ""
    ),
}
# What a rollup keeps besides the hour (groups are sets of links): a query needing anything
# else reads the raw table.
GROUPINGS = ("campaign", "folder", "tag")
ROLLUP_DIMENSIONS = frozenset({"time", "link", "group", *GROUPINGS})
LINK_DIMENSIONS = frozenset({"link", "group", *GROUPINGS})
ROLLUP_COLUMNS = frozenset({"link_id"})

# name, optional (parameters), (arguments) of an aggregate call.
_AGGREGATE = re.compile(r"(\w+)(\([^()]*\))?\((.*)\)$", re.S)


def _conditional(aggregate: str, cond: str | None) -> str:
    """f(x) -> fIf(x, cond), f(p)(x) -> fIf(p)(x, cond); unchanged without cond."""
    if cond is None:
        return aggregate
    found = _AGGREGATE.match(aggregate)
    if found is None:
        raise ValueError(f"not an aggregate call: {aggregate}")
    name, parameters, args = found.groups()
    return f"{name}If{parameters or ''}({args + ', ' if args else ''}{cond})"


def _metrics(q: EventQuery, source: Source, cond: str | None) -> list[str]:
    """events, visitors and revenue aggregates for the kind (restricted to cond when given)."""
    metrics = [_conditional(source.events, cond)]
    if q.kind == "clicks" and q.with_visitors:
        metrics.append(_conditional(source.visitors, cond))
    else:
        metrics.append("toUInt64(0)")
    if q.kind == "sales" and q.revenue_factors:
        revenue = f"sum({source.amount} * transform(currency, %(fx_codes)s, %(fx_factors)s, 0.0))"
        metrics.append(_conditional(revenue, cond))
    else:
        metrics.append("toFloat64(0)")
    return metrics


def _on_hours(*instants: datetime | None) -> bool:
    return all(i is None or int(i.timestamp()) % 3600 == 0 for i in instants)


def choose_source(q: EventQuery) -> Source:
    """The hourly rollup when it gives the same answer as the raw table, else the raw table."""
    if (
        set(q.group_by) <= ROLLUP_DIMENSIONS
        and not q.filters
        and (q.predicate is None or q.predicate.columns <= ROLLUP_COLUMNS)
        and _on_hours(q.start, q.end, q.compare_start)
        and ("time" not in q.group_by or whole_hour_offsets(q.tz, q.start, q.end))
    ):
        by_link = q.link_ids is not None or bool(LINK_DIMENSIONS & set(q.group_by))
        return ROLLUP[q.kind] if by_link else WORKSPACE_ROLLUP.get(q.kind, ROLLUP[q.kind])
    return RAW[q.kind]


def _key_expression(
    name: str, q: EventQuery, dims: dict[str, str], time: str, params: dict[str, Any]
) -> str:
    if name == "time":
        sql, bucket_params = bucket_sql(
            time, q.granularity, q.tz, q.compare_start or q.start, q.end
        )
        params.update(bucket_params)
        return sql
    if name == "group":
        return _group_key("group", 0)
    if name in GROUPINGS:
        # Position 1 holds group 0, the slice of links in no group.
        return _group_key(name, 1)
    return dims[name]


def _group_key(prefix: str, default: int) -> str:
    """A link's groups: its slice of the group ids, or (links not listed) the slice at default.

    Through `transform`, a hash look-up per row (indexOf over thousands of links cost seconds on
    a whale); without a lambda, since 18.16 loses track of columns captured by lambdas in GROUP
    BY keys. The pairs are never empty."""
    return (
        f"arrayJoin(arraySlice(%({prefix}_ids)s,"
        f" transform(link_id, %({prefix}_links)s, %({prefix}_starts)s, {default}),"
        f" transform(link_id, %({prefix}_links)s, %({prefix}_counts)s, {default})))"
    )


def _group_slices(
    link_groups: tuple[tuple[int, int], ...], prefix: str = "group", leading: tuple[int, ...] = ()
) -> dict[str, list[int]]:
    """Group ids sorted by link (after the leading ones), and each link's 1-based start and
    length in them, under prefix_ids, prefix_links, prefix_starts and prefix_counts."""
    pairs = sorted(link_groups)  # a link's groups form one contiguous slice
    links: list[int] = []
    starts: list[int] = []
    counts: list[int] = []
    for position, (link, _) in enumerate(pairs, start=1 + len(leading)):
        if links and links[-1] == link:
            counts[-1] += 1
        else:
            links.append(link)
            starts.append(position)
            counts.append(1)
    return {
        f"{prefix}_ids": [*leading, *(group for _, group in pairs)],
        f"{prefix}_links": links,
        f"{prefix}_starts": starts,
        f"{prefix}_counts": counts,
    }


def compile_query(q: EventQuery) -> tuple[str, dict[str, Any]]:
    """SQL and parameters returning rows of (key, events, visitors, revenue[, prev_* …])."""
    source = choose_source(q)
    where, params = q.where(source.time)
    dims = dimensions(q.kind)
    params.update(
        tz=q.tz,
        fx_codes=list(q.revenue_factors),
        fx_factors=[float(v) for v in q.revenue_factors.values()],
    )
    if q.compare_start is None:
        metrics = _metrics(q, source, None)
    else:
        current = f"{source.time} >= toDateTime(%(start)s)"
        previous = f"{source.time} < toDateTime(%(start)s)"
        metrics = _metrics(q, source, current) + _metrics(q, source, previous)

    if "group" in q.group_by:
        params.update(_group_slices(q.link_groups))
    for name, pairs in q.groupings:
        if name in q.group_by:
            # A link in no group, or a grouping with no pairs, falls on the leading 0.
            params.update(_group_slices(pairs or ((0, 0),), name, leading=(0,)))
    keys = [_key_expression(n, q, dims, source.time, params) for n in q.group_by] or ["0"]
    width = len(keys)
    selected = ", ".join(
        [f"{expr} AS k{i}" for i, expr in enumerate(keys)]
        + [f"{expr} AS m{i}" for i, expr in enumerate(metrics)]
    )
    sql = f"SELECT {selected} FROM {source.table} WHERE {' AND '.join(where)}"
    if q.group_by:
        sql += f" GROUP BY {', '.join(f'k{i}' for i in range(width))}"
        if "time" in q.group_by:
            sql += f" ORDER BY {', '.join(f'k{i}' for i in range(width))}"
        else:
            sql += f" ORDER BY m{METRIC_ORDER.index(q.order_by)} DESC, k0"
            if q.limit is not None:
                params["limit"] = q.limit
                sql += " LIMIT %(limit)s"
    if q.max_rows is not None and "limit" not in params:
        params["max_rows"] = q.max_rows
        sql += " LIMIT %(max_rows)s"
    return sql, params


@dataclass(frozen=True)
class Row:
    """One result row: key (a tuple when grouped by several) plus current (and previous) metrics."""

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
        return [] if q.group_by else [Row(0, 0, 0, 0.0)]
    sql, params = compile_query(q)
    width = max(len(q.group_by), 1)
    if q.timeout_seconds is None:
        found = await ch.fetch(sql, params)
    else:
        found = await ch.fetch(sql, params, settings={"max_execution_time": q.timeout_seconds})
    return [
        Row(
            r[0] if width == 1 else tuple(r[:width]),
            int(r[width]),
            int(r[width + 1]),
            float(r[width + 2]),
            *r[width + 3 :],
        )
        for r in found
    ]
