"""Totals and timeseries presets: EventQuerys over a QueryContext, merged across event kinds."""

from __future__ import annotations

import asyncio

from services.protos import common_pb2 as c
from services.query import buckets
from services.query.engine import Row
from services.query.executor import Executor
from services.query.params import QueryContext
from services.query.predicates import EVENT_KINDS

ALL_KINDS = EVENT_KINDS
EMPTY = Row(0, 0, 0, 0.0)


def rate(numerator: int, denominator: int) -> float:
    """numerator / denominator rounded to 6 places, 0 when the denominator is 0."""
    return round(numerator / denominator, 6) if denominator else 0.0


def money(value: float) -> float:
    """An amount rounded to cents for display."""
    return round(value, 2)


async def per_kind(
    ex: Executor, ctx: QueryContext, kinds: tuple[str, ...], **overrides: object
) -> dict[str, list[Row]]:
    """Run the same query shape over each event kind concurrently; absent kinds get no rows."""
    results = await asyncio.gather(*(ex.run(ctx.event_query(k, **overrides)) for k in kinds))
    found = dict(zip(kinds, results, strict=True))
    return {kind: found.get(kind, []) for kind in ALL_KINDS}


def totals(rows: dict[str, list[Row]], previous: bool = False) -> c.Totals:
    """Totals message from the first (only) row of each kind."""
    clicks, leads, sales = (rows[k][0] if rows[k] else EMPTY for k in ALL_KINDS)
    if previous:
        return c.Totals(
            clicks=clicks.prev_events,
            unique_visitors=clicks.prev_visitors,
            leads=leads.prev_events,
            sales=sales.prev_events,
            revenue=money(sales.prev_revenue),
        )
    return c.Totals(
        clicks=clicks.events,
        unique_visitors=clicks.visitors,
        leads=leads.events,
        sales=sales.events,
        revenue=money(sales.revenue),
    )


async def overview(
    ex: Executor, ctx: QueryContext, kinds: tuple[str, ...] = ALL_KINDS
) -> c.OverviewResponse:
    """Totals of the window and of the equal-length period before it, with conversion rates."""
    rows = await per_kind(ex, ctx, kinds, compare_start=ctx.window.previous_start)
    current = totals(rows)
    return c.OverviewResponse(
        totals=current,
        previous=totals(rows, previous=True),
        rates=c.ConversionRates(
            click_to_lead=rate(current.leads, current.clicks),
            lead_to_sale=rate(current.sales, current.leads),
            click_to_sale=rate(current.sales, current.clicks),
        ),
        meta=ctx.meta(ex.sources, with_previous=True),
    )


async def points(
    ex: Executor, ctx: QueryContext, kinds: tuple[str, ...] = ALL_KINDS
) -> list[c.TimeseriesPoint]:
    """Every bucket of the window in its time zone with each kind's metrics; gaps are zeros."""
    rows = await per_kind(ex, ctx, kinds, group_by=("time",))
    by_kind = {kind: {int(r.key): r for r in found} for kind, found in rows.items()}
    tz = ctx.window.tz
    out = []
    for start in buckets.starts(ctx.window.start, ctx.window.end, ctx.window.granularity, tz):
        key = int(start.timestamp())
        clicks, leads, sales = (by_kind[k].get(key, EMPTY) for k in ALL_KINDS)
        out.append(
            c.TimeseriesPoint(
                time=buckets.label(start, tz),
                clicks=clicks.events,
                unique_visitors=clicks.visitors,
                leads=leads.events,
                sales=sales.events,
                revenue=money(sales.revenue),
            )
        )
    return out


async def timeseries(
    ex: Executor, ctx: QueryContext, kinds: tuple[str, ...] = ALL_KINDS
) -> c.TimeseriesResponse:
    """Timeseries of the given kinds."""
    found = await points(ex, ctx, kinds)
    return c.TimeseriesResponse(points=found, meta=ctx.meta(ex.sources))
