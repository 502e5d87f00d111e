"""The fallback source: EventQuerys answered from the daily aggregates kept in PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from services import errors
from services.query.engine import METRIC_ORDER, EventQuery, Row
from services.query.predicates import EVENT_KINDS, DimensionFilter
from services.timerange import local_midnight

# The dimensions kept per day and link (besides the link itself); the rollup job fills these.
AGGREGATED_DIMENSIONS = (
    "country",
    "continent",
    "region",
    "city",
    "device",
    "browser",
    "os",
    "referrer",
    "trigger",
)
# Groupings answered from per-link rows: the link itself, or the folder/tag/campaign of a link
# (EventQuery.link_groups).
_LINK_KEYS = ("link", "group")
# For meta.notices when clicks were answered from the aggregates: their visitors are exact per
# day (and link) but summed over the days (and links) of a row, so they can only over-count.
VISITORS_NOTICE = (
    "ClickHouse is unreachable: these figures come from the daily aggregates, where unique "
    "visitors are counted per day (and per link) and summed, so a visitor seen on several days "
    "counts once per day"
)
_UNREACHABLE = "ClickHouse is unreachable"

# Per kind: the columns holding its human count, what bots add, and (clicks only) visitors.
_COUNTS = {
    "clicks": ("clicks", "bot_clicks", "visitors", "bot_visitors"),
    "leads": ("leads", "bot_leads", None, None),
    "sales": ("sales", "bot_sales", None, None),
}


@dataclass(frozen=True)
class AggregateState:
    """What the aggregates of one workspace hold: their zone, first day and refresh time."""

    timezone: str
    covered_from: date
    refreshed_at: datetime | None


async def load_state(
    pg: asyncpg.Pool | asyncpg.Connection, workspace_id: int
) -> AggregateState | None:
    """The aggregate state of a workspace, or None when the job has never seen it."""
    row = await pg.fetchrow(
        "SELECT timezone, covered_from, refreshed_at FROM daily_aggregate_state"
        " WHERE workspace_id = $1",
        workspace_id,
    )
    if row is None:
        return None
    return AggregateState(row["timezone"], row["covered_from"], row["refreshed_at"])


def _unavailable(why: str) -> errors.ApiError:
    return errors.unavailable(f"{_UNREACHABLE}; {why}")


@dataclass(frozen=True)
class _Shape:
    """Which aggregate rows answer a query."""

    dimension: str  # "" reads the totals rows
    per_link: bool  # False reads the workspace-wide rows (link_id 0)
    value_filters: tuple[DimensionFilter, ...]
    link_filters: tuple[DimensionFilter, ...]


def _shape(q: EventQuery) -> _Shape:
    """The rows that answer q's grouping and filters; UNAVAILABLE when none do."""
    if q.kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {q.kind!r}")
    if q.order_by not in METRIC_ORDER:
        raise ValueError(f"unknown order {q.order_by!r}")
    if "time" in q.group_by and q.granularity not in ("day", "week", "month"):
        raise _unavailable(
            f"{q.granularity}ly buckets need it (the daily aggregates answer granularity=day, "
            "week or month)"
        )
    if q.predicate is not None:
        raise _unavailable("this filter tree needs it")
    known = ("time", *_LINK_KEYS, *AGGREGATED_DIMENSIONS)
    unknown = [g for g in q.group_by if g not in known]
    if unknown:
        raise _unavailable(f"grouping by {', '.join(unknown)} needs it")
    valued = [g for g in q.group_by if g in AGGREGATED_DIMENSIONS]
    linked = [g for g in q.group_by if g in _LINK_KEYS]
    if len(valued) > 1 or len(linked) > 1 or len(set(q.group_by)) != len(q.group_by):
        raise _unavailable(f"grouping by {' and '.join(q.group_by)} together needs it")
    link_filters = tuple(f for f in q.filters if f.dimension == "link")
    value_filters = tuple(f for f in q.filters if f.dimension != "link")
    filtered = sorted({f.dimension for f in value_filters})
    outside = [d for d in filtered if d not in AGGREGATED_DIMENSIONS]
    if outside:
        raise _unavailable(f"filtering by {', '.join(outside)} needs it")
    if valued and any(d != valued[0] for d in filtered):
        others = ", ".join(d for d in filtered if d != valued[0])
        raise _unavailable(f"filtering by {others} while grouping by {valued[0]} needs it")
    if len(filtered) > 1:
        raise _unavailable(f"combining filters on {' and '.join(filtered)} needs it")
    return _Shape(
        dimension=valued[0] if valued else (filtered[0] if filtered else ""),
        per_link=bool(linked or link_filters) or q.link_ids is not None,
        value_filters=value_filters,
        link_filters=link_filters,
    )


def _local_day(instant: datetime, tz: ZoneInfo, what: str) -> date:
    """The local date starting at instant; UNAVAILABLE when instant is not a local midnight."""
    day = instant.astimezone(tz).date()
    if local_midnight(day, tz) != instant:
        raise _unavailable(
            f"the daily aggregates answer whole days only, and the {what} "
            f"{instant.astimezone(tz).isoformat()} is not midnight in {tz.key}"
        )
    return day


@dataclass(frozen=True)
class _Days:
    """The query's range as local days: [lower, end), the current period from start."""

    lower: date
    start: date
    end: date


def _days(q: EventQuery, state: AggregateState) -> _Days:
    if q.tz != state.timezone:
        raise _unavailable(
            f"the daily aggregates are kept in {state.timezone}, so timezone {q.tz} needs it"
        )
    tz = ZoneInfo(state.timezone)
    start = _local_day(q.start, tz, "start")
    end = _local_day(q.end, tz, "end")
    lower = start if q.compare_start is None else _local_day(q.compare_start, tz, "previous start")
    if lower < state.covered_from:
        raise _unavailable(
            f"the daily aggregates start on {state.covered_from.isoformat()}, after "
            f"{lower.isoformat()}"
        )
    return _Days(lower, start, end)


class _Sql:
    """A parameterised statement under construction ($n placeholders)."""

    def __init__(self) -> None:
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


def _key_columns(q: EventQuery) -> list[str]:
    coarser = {
        "month": "date_trunc('month', day)::date",
        "week": "date_trunc('week', day)::date",  # ISO weeks: Mondays
    }
    return [
        coarser.get(q.granularity, "day")
        if g == "time"
        else ("link_id" if g in _LINK_KEYS else "value")
        for g in q.group_by
    ]


def _where(q: EventQuery, shape: _Shape, days: _Days, sql: _Sql) -> str:
    where = [
        f"workspace_id = {sql.arg(q.workspace_id)}",
        f"dimension = {sql.arg(shape.dimension)}",
        f"day >= {sql.arg(days.lower)}",
        f"day < {sql.arg(days.end)}",
    ]
    if not shape.per_link:
        where.append("link_id = 0")
    else:
        where.append("link_id <> 0")
    if q.link_ids is not None:
        where.append(f"link_id = ANY({sql.arg(list(q.link_ids))}::bigint[])")
    if "group" in q.group_by:
        where.append(f"link_id = ANY({sql.arg([link for link, _ in q.link_groups])}::bigint[])")
    for flt in shape.link_filters:
        test = f"link_id = ANY({sql.arg([int(str(v)) for v in flt.values])}::bigint[])"
        where.append(f"NOT ({test})" if flt.exclude else test)
    for flt in shape.value_filters:
        test = f"value = ANY({sql.arg([str(v) for v in flt.values])}::text[])"
        where.append(f"NOT ({test})" if flt.exclude else test)
    return " AND ".join(where)


def _select(
    q: EventQuery,
    sql: _Sql,
    source: str,
    metrics: list[str],
    having: str | None,
    shape: _Shape,
    days: _Days,
) -> tuple[str, int]:
    """SELECT of the keys, each metric's sum, then (comparing) each metric's previous sum."""
    where = _where(q, shape, days, sql)
    keys = _key_columns(q)
    columns = [f"{k} AS k{i}" for i, k in enumerate(keys)]
    if q.compare_start is None:
        columns += [f"COALESCE(SUM({m}), 0)" for m in metrics]
    else:
        current = f"day >= {sql.arg(days.start)}"
        columns += [f"COALESCE(SUM({m}) FILTER (WHERE {current}), 0)" for m in metrics]
        columns += [f"COALESCE(SUM({m}) FILTER (WHERE NOT ({current})), 0)" for m in metrics]
    text = f"SELECT {', '.join(columns)} FROM {source} WHERE {where}"
    if keys:
        text += f" GROUP BY {', '.join(f'k{i}' for i in range(len(keys)))}"
        if having:
            text += f" HAVING {having}"
    return text, len(keys)


def _count(column: str, bots: str | None, include_bots: bool) -> str:
    return f"({column} + {bots})" if include_bots and bots else column


def _by_group(
    q: EventQuery, found: dict[tuple[Any, ...], list[Any]]
) -> dict[tuple[Any, ...], list[Any]]:
    """Rows keyed by link re-keyed by each group of the link, summed (a link may be in several)."""
    at = q.group_by.index("group")
    groups: dict[int, list[int]] = {}
    for link, group in q.link_groups:
        groups.setdefault(link, []).append(group)
    merged: dict[tuple[Any, ...], list[Any]] = {}
    for key, values in found.items():
        for group in groups.get(key[at], ()):
            regrouped = (*key[:at], group, *key[at + 1 :])
            total = merged.setdefault(regrouped, [0] * len(values))
            for i, v in enumerate(values):
                total[i] += v
    return merged


class DailyAggregates:
    """Answers the EventQuerys the daily aggregates can answer exactly (visitors aside)."""

    def __init__(self, pg: asyncpg.Pool) -> None:
        self.pg = pg

    @staticmethod
    def notices(q: EventQuery) -> list[str]:
        """What meta.notices should say about an answer to q from the aggregates."""
        return [VISITORS_NOTICE] if q.kind == "clicks" else []

    async def run(self, q: EventQuery) -> tuple[list[Row], datetime]:
        """Rows shaped as engine.run's and when the aggregates were refreshed; or UNAVAILABLE."""
        shape = _shape(q)
        async with self.pg.acquire() as conn:
            state = await load_state(conn, q.workspace_id)
            if state is None or state.refreshed_at is None:
                raise _unavailable("no daily aggregates exist for this workspace yet")
            days = _days(q, state)
            if q.link_ids is not None and not q.link_ids:
                return ([] if q.group_by else [Row(0, 0, 0, 0.0)]), state.refreshed_at
            counts = await self._counts(conn, q, shape, days)
            revenue = await self._revenue(conn, q, shape, days) if q.kind == "sales" else {}
        if "group" in q.group_by:
            counts, revenue = _by_group(q, counts), _by_group(q, revenue)
        tz = ZoneInfo(state.timezone)
        rows = [self._row(q, key, values, revenue.get(key), tz) for key, values in counts.items()]
        if not q.group_by:
            return rows, state.refreshed_at
        if "time" in q.group_by:
            rows.sort(key=lambda r: r.key)
            return rows, state.refreshed_at
        metric = METRIC_ORDER.index(q.order_by)

        def order(r: Row) -> tuple[Any, ...]:
            keys = r.key if isinstance(r.key, tuple) else (r.key,)
            return (-(r.events, r.visitors, r.revenue)[metric], *keys)

        rows.sort(key=order)
        return (rows if q.limit is None else rows[: q.limit]), state.refreshed_at

    async def _counts(
        self, conn: asyncpg.Connection, q: EventQuery, shape: _Shape, days: _Days
    ) -> dict[tuple[Any, ...], list[Any]]:
        """Per group: events, visitors (0 but for clicks), then their previous-period sums."""
        events, bot_events, visitors, bot_visitors = _COUNTS[q.kind]
        event_sum = _count(events, bot_events, q.include_bots)
        visitor_sum = _count(visitors, bot_visitors, q.include_bots) if visitors else "0"
        sql = _Sql()
        # As in ClickHouse, a group exists when an event of the kind falls in [lower, end).
        text, width = _select(
            q,
            sql,
            "daily_aggregates",
            [event_sum, visitor_sum],
            f"SUM({event_sum}) > 0",
            shape,
            days,
        )
        records = await conn.fetch(text, *sql.args)
        return {tuple(r[:width]): [int(v) for v in r[width:]] for r in records}

    async def _revenue(
        self, conn: asyncpg.Connection, q: EventQuery, shape: _Shape, days: _Days
    ) -> dict[tuple[Any, ...], list[Any]]:
        """Per group: revenue in the display currency, then its previous-period sum."""
        if not q.revenue_factors:
            return {}
        sql = _Sql()
        codes = sql.arg(list(q.revenue_factors))
        factors = sql.arg([float(v) for v in q.revenue_factors.values()])
        # A currency without a factor converts to 0, as transform(…, 0.0) does in ClickHouse.
        source = (
            f"daily_revenue JOIN unnest({codes}::text[], {factors}::float8[]) AS f(code, factor)"
            " ON f.code = currency"
        )
        amount = "(amount + bot_amount)" if q.include_bots else "amount"
        text, width = _select(q, sql, source, [f"{amount} * f.factor"], None, shape, days)
        records = await conn.fetch(text, *sql.args)
        return {tuple(r[:width]): [float(v) for v in r[width:]] for r in records}

    @staticmethod
    def _row(
        q: EventQuery,
        key: tuple[Any, ...],
        counts: list[Any],
        revenue: list[Any] | None,
        tz: ZoneInfo,
    ) -> Row:
        parts = [
            int(local_midnight(k, tz).timestamp()) if g == "time" else k
            for g, k in zip(q.group_by, key, strict=True)
        ]
        row_key: Any = 0 if not parts else (parts[0] if len(parts) == 1 else tuple(parts))
        money = revenue or [0.0, 0.0]
        if q.compare_start is None:
            return Row(row_key, counts[0], counts[1], money[0])
        return Row(row_key, counts[0], counts[1], money[0], counts[2], counts[3], money[1])
