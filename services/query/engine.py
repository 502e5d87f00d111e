"""The one query engine: a typed event query compiled to parameterised ClickHouse SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.query.buckets import BUCKET_SQL, whole_hour_offsets
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
METRIC_ORDER = ("events", "visitors", "revenue")


@dataclass(frozen=True)
class DimensionFilter:
    """Keep (or, with exclude, drop) events whose dimension is one of values."""

    dimension: str
    values: tuple[object, ...]
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
    # () for totals; else one or more of "time" (buckets of granularity in tz) and dimensions.
    group_by: tuple[str, ...] = ()
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
    # For the "group" dimension: (link_id, group_id) pairs (folders, tags, campaigns); a link
    # may be in several groups (tags) and counts in each; links in none are left out.
    link_groups: tuple[tuple[int, int], ...] = ()
    # Unique visitors are most of a clicks query's cost: off where the answer does not show them.
    with_visitors: bool = True


def _dimensions(kind: str) -> dict[str, str]:
    return CLICK_DIMENSIONS if kind == "clicks" else DIMENSIONS


@dataclass(frozen=True)
class Source:
    """A table an EventQuery can read: raw events or an hourly rollup, and how to aggregate it."""

    table: str
    time: str
    events: str  # (function, argument) templates, see _metrics
    visitors: str
    amount: str


RAW = {
    kind: Source(kind, "timestamp", "count()", "uniq(visitor_id)", "amount") for kind in EVENT_KINDS
}
ROLLUP = {
    "clicks": Source("clicks_hourly", "hour", "countMerge(events)", "uniqMerge(visitors)", ""),
    "leads": Source("leads_hourly", "hour", "sum(events)", "", ""),
    "sales": Source("sales_hourly", "hour", "sum(events)", "", "amount"),
}
# What a rollup keeps besides the hour: a query needing anything else reads the raw table.
ROLLUP_DIMENSIONS = frozenset({"time", "link"})


def _conditional(aggregate: str, cond: str | None) -> str:
    """f(x) -> fIf(x, cond) (fMerge(x) -> fMergeIf(x, cond)); unchanged without cond."""
    if cond is None:
        return aggregate
    name, _, rest = aggregate.partition("(")
    args = rest[:-1]
    return f"{name}If({args + ', ' if args else ''}{cond})"


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
        and _on_hours(q.start, q.end, q.compare_start)
        and ("time" not in q.group_by or whole_hour_offsets(q.tz, q.start, q.end))
    ):
        return ROLLUP[q.kind]
    return RAW[q.kind]


def _where(q: EventQuery, time: str = "timestamp") -> tuple[list[str], dict[str, Any]]:
    """Predicates shared by every query of q: workspace first, range, links, bots, filters."""
    if q.kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {q.kind!r}")
    dims = _dimensions(q.kind)
    params: dict[str, Any] = {
        "ws": q.workspace_id,
        "end": int(q.end.timestamp()),
        "start": int(q.start.timestamp()),
        "compare_start": int(q.compare_start.timestamp()) if q.compare_start else 0,
    }
    lower = "start" if q.compare_start is None else "compare_start"
    where = [
        "workspace_id = %(ws)s",
        f"{time} >= toDateTime(%({lower})s)",
        f"{time} < toDateTime(%(end)s)",
    ]
    if q.link_ids is not None:
        params["links"] = tuple(q.link_ids)  # a tuple renders as an IN list
        where.append("link_id IN %(links)s")
    if not q.include_bots:
        where.append("is_bot = 0")
    for i, flt in enumerate(q.filters):
        params[f"f{i}"] = tuple(flt.values)
        where.append(f"{dims[flt.dimension]} {'NOT IN' if flt.exclude else 'IN'} %(f{i})s")
    return where, params


def _key_expression(name: str, granularity: str, dims: dict[str, str], time: str) -> str:
    if name == "time":
        return BUCKET_SQL[granularity].format(col=time)
    if name == "group":
        # Without a lambda: 18.16 loses track of columns captured by lambdas in GROUP BY keys.
        return (
            "arrayJoin(arraySlice(%(group_ids)s, indexOf(%(group_links)s, link_id),"
            " countEqual(%(group_links)s, link_id)))"
        )
    return dims[name]


def compile_query(q: EventQuery) -> tuple[str, dict[str, Any]]:
    """SQL and parameters returning rows of (key, events, visitors, revenue[, prev_* …])."""
    source = choose_source(q)
    where, params = _where(q, source.time)
    dims = _dimensions(q.kind)
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
        pairs = sorted(q.link_groups)  # a link's groups form one contiguous slice
        params["group_links"] = [link for link, _ in pairs]
        params["group_ids"] = [group for _, group in pairs]
    keys = [_key_expression(n, q.granularity, dims, source.time) for n in q.group_by] or ["0"]
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
    return [
        Row(
            r[0] if width == 1 else tuple(r[:width]),
            int(r[width]),
            int(r[width + 1]),
            float(r[width + 2]),
            *r[width + 3 :],
        )
        for r in await ch.fetch(sql, params)
    ]


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


@dataclass(frozen=True)
class ListQuery:
    """Raw events of one kind in (timestamp, event_id) order, one page after a position."""

    kind: str
    workspace_id: int
    start: datetime
    end: datetime
    columns: tuple[str, ...]
    limit: int
    link_ids: tuple[int, ...] | None = None
    filters: tuple[DimensionFilter, ...] = ()
    include_bots: bool = True
    # Page position: events strictly after (or, descending, before) this (epoch seconds, id).
    after: tuple[int, int] | None = None
    descending: bool = False


def compile_list(q: ListQuery) -> tuple[str, dict[str, Any]]:
    """SQL and parameters of one page of raw events."""
    unknown = set(q.columns) - set(LIST_COLUMNS[q.kind])
    if unknown:
        raise ValueError(f"columns not allowed for {q.kind}: {sorted(unknown)}")
    base = EventQuery(
        kind=q.kind,
        workspace_id=q.workspace_id,
        start=q.start,
        end=q.end,
        link_ids=q.link_ids,
        filters=q.filters,
        include_bots=q.include_bots,
    )
    where, params = _where(base)
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


@dataclass(frozen=True)
class SequenceQuery:
    """Per visitor, their clicks (time, link) in order, for visitors who clicked `through`."""

    workspace_id: int
    start: datetime
    end: datetime
    through: int
    max_visitors: int = 20000
    include_bots: bool = False
    filters: tuple[DimensionFilter, ...] = ()


def compile_sequences(q: SequenceQuery) -> tuple[str, dict[str, Any]]:
    """SQL returning (visitor_id, [epoch seconds], [link ids]) sorted by time per visitor."""
    where, params = _where(
        EventQuery(
            kind="clicks",
            workspace_id=q.workspace_id,
            start=q.start,
            end=q.end,
            include_bots=q.include_bots,
            filters=q.filters,
        )
    )
    params.update(through=q.through, max_visitors=q.max_visitors)
    condition = " AND ".join(where)
    sql = (
        "SELECT visitor_id, arrayMap(p -> p.1, pairs), arrayMap(p -> p.2, pairs) FROM ("
        " SELECT visitor_id, arraySort(groupArray((toUInt32(timestamp), link_id))) AS pairs"
        f" FROM clicks WHERE {condition} AND visitor_id IN ("
        f"  SELECT visitor_id FROM clicks WHERE {condition} AND link_id = %(through)s"
        "   GROUP BY visitor_id LIMIT %(max_visitors)s)"
        " GROUP BY visitor_id)"
    )
    return sql, params


async def run_sequences(ch: ClickHouse, q: SequenceQuery) -> list[tuple[str, list[int], list[int]]]:
    """Click sequences of the visitors who clicked q.through in the range."""
    sql, params = compile_sequences(q)
    return [(r[0], list(r[1]), list(r[2])) for r in await ch.fetch(sql, params)]


# Export file formats the engine compiles for, and ClickHouse's output format of each.
EXPORT_FORMATS = {"csv": "CSVWithNames", "ndjson": "JSONEachRow"}
# Columns of the raw tables that hold numbers; every other listed column is a string.
NUMERIC_COLUMNS = frozenset(
    {"event_id", "link_id", "click_id", "rule_id", "condition_id", "is_bot", "amount"}
)
# First characters that make a spreadsheet run a cell as a formula (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _export_column(column: str, fmt: str) -> str:
    """The outer SELECT expression of one column (the inner query names it c_<column>).

    Times are ISO-8601 UTC; in CSV, strings are made safe for spreadsheets.
    """
    inner = f"c_{column}"
    if column == "timestamp":
        return f"concat(replaceOne(toString({inner}, 'UTC'), ' ', 'T'), 'Z') AS timestamp"
    if column in NUMERIC_COLUMNS or fmt != "csv":
        return f"{inner} AS {column}"
    escaped = (c.replace("\t", "\\t").replace("\r", "\\r") for c in FORMULA_STARTS)
    starts = ", ".join(f"'{c}'" for c in escaped)
    # A formula-like cell gets a leading apostrophe; line breaks become spaces, so that every
    # row is exactly one line of the file.
    safe = f"if(substring({inner}, 1, 1) IN ({starts}), concat('''', {inner}), {inner})"
    return f"replaceAll(replaceAll({safe}, '\\r', ' '), '\\n', ' ') AS {column}"


@dataclass(frozen=True)
class ExportQuery:
    """Every raw event of one kind in a UTC range and scope, as a file format, in storage order."""

    kind: str
    workspace_id: int
    start: datetime
    end: datetime
    columns: tuple[str, ...]
    fmt: str = "csv"
    link_ids: tuple[int, ...] | None = None
    filters: tuple[DimensionFilter, ...] = ()
    include_bots: bool = True


def _export_where(q: ExportQuery) -> tuple[list[str], dict[str, Any]]:
    unknown = set(q.columns) - set(LIST_COLUMNS[q.kind])
    if unknown or not q.columns:
        raise ValueError(f"columns not allowed for {q.kind}: {sorted(unknown) or '(none)'}")
    if q.fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {q.fmt!r}")
    base = EventQuery(
        kind=q.kind,
        workspace_id=q.workspace_id,
        start=q.start,
        end=q.end,
        link_ids=q.link_ids if q.link_ids is None or q.link_ids else (0,),
        filters=q.filters,
        include_bots=q.include_bots,
    )
    return _where(base)


def compile_export(q: ExportQuery) -> tuple[str, dict[str, Any]]:
    """SQL (ending in its FORMAT clause) and parameters streaming the rows of an export."""
    where, params = _export_where(q)
    # The outer query's names may equal the table's columns without the WHERE seeing them.
    inner = ", ".join(f"{c} AS c_{c}" for c in q.columns)
    outer = ", ".join(_export_column(c, q.fmt) for c in q.columns)
    sql = (
        f"SELECT {outer} FROM (SELECT {inner} FROM {q.kind} WHERE {' AND '.join(where)})"
        f" FORMAT {EXPORT_FORMATS[q.fmt]}"
    )
    return sql, params


async def count_export(ch: ClickHouse, q: ExportQuery) -> int:
    """How many rows the export has now (its estimate before it runs)."""
    where, params = _export_where(q)
    rows = await ch.fetch(f"SELECT count() FROM {q.kind} WHERE {' AND '.join(where)}", params)
    return int(rows[0][0])
