"""Analytics routes as presets: EventQuerys built over a QueryContext, answers shaped."""

from __future__ import annotations

import asyncio

from services.pb import common_pb2 as c
from services.query import buckets, engine
from services.query.engine import Row
from services.query.params import QueryContext
from services.stores.clickhouse import ClickHouse


def _rate(numerator: int, denominator: int) -> float:
    return round(numerator / denominator, 6) if denominator else 0.0


def _money(value: float) -> float:
    return round(value, 2)


async def _per_kind(ch: ClickHouse, ctx: QueryContext, **overrides: object) -> dict[str, list[Row]]:
    """Run the same query shape over clicks, leads and sales concurrently."""
    results = await asyncio.gather(
        *(engine.run(ch, ctx.event_query(kind, **overrides)) for kind in engine.EVENT_KINDS)
    )
    return dict(zip(engine.EVENT_KINDS, results, strict=True))


def _totals(clicks: Row, leads: Row, sales: Row, previous: bool = False) -> c.Totals:
    if previous:
        return c.Totals(
            clicks=clicks.prev_events,
            unique_visitors=clicks.prev_visitors,
            leads=leads.prev_events,
            sales=sales.prev_events,
            revenue=_money(sales.prev_revenue),
        )
    return c.Totals(
        clicks=clicks.events,
        unique_visitors=clicks.visitors,
        leads=leads.events,
        sales=sales.events,
        revenue=_money(sales.revenue),
    )


async def overview(ch: ClickHouse, ctx: QueryContext) -> c.OverviewResponse:
    """Totals of the window and of the equal-length period before it, with conversion rates."""
    rows = await _per_kind(ch, ctx, compare_start=ctx.window.previous_start)
    first = {kind: found[0] for kind, found in rows.items()}
    totals = _totals(first["clicks"], first["leads"], first["sales"])
    return c.OverviewResponse(
        totals=totals,
        previous=_totals(first["clicks"], first["leads"], first["sales"], previous=True),
        rates=c.ConversionRates(
            click_to_lead=_rate(totals.leads, totals.clicks),
            lead_to_sale=_rate(totals.sales, totals.leads),
            click_to_sale=_rate(totals.sales, totals.clicks),
        ),
        meta=ctx.meta(with_previous=True),
    )


async def timeseries(ch: ClickHouse, ctx: QueryContext) -> c.TimeseriesResponse:
    """Per bucket of the granularity in the time zone, every metric; empty buckets are zeros."""
    rows = await _per_kind(ch, ctx, group_by=("time",))
    by_kind = {kind: {int(r.key): r for r in found} for kind, found in rows.items()}
    tz = ctx.window.tz
    points = []
    for start in buckets.starts(ctx.window.start, ctx.window.end, ctx.window.granularity, tz):
        key = int(start.timestamp())
        clicks = by_kind["clicks"].get(key)
        leads = by_kind["leads"].get(key)
        sales = by_kind["sales"].get(key)
        points.append(
            c.TimeseriesPoint(
                time=buckets.label(start, tz),
                clicks=clicks.events if clicks else 0,
                unique_visitors=clicks.visitors if clicks else 0,
                leads=leads.events if leads else 0,
                sales=sales.events if sales else 0,
                revenue=_money(sales.revenue) if sales else 0.0,
            )
        )
    return c.TimeseriesResponse(points=points, meta=ctx.meta())
