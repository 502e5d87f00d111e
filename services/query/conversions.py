"""Conversion presets: the conversion events with their click context, and the funnel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from services import cursor
from services.protos import query_pb2 as q
from services.query import listings
from services.query.executor import Executor
from services.query.listings import ListQuery
from services.query.params import QueryContext
from services.query.predicates import EVENT_KINDS
from services.query.presets import per_kind, rate, totals

DETAIL_COLUMNS = {
    "leads": ("event_id", "timestamp", "link_id", "click_id", "customer_id", "event_name",
              "country", "device", "referrer"),
    "sales": ("event_id", "timestamp", "link_id", "click_id", "customer_id", "event_name",
              "country", "device", "referrer", "amount", "currency"),
}  # fmt: skip
KIND_NAMES = {"leads": "lead", "sales": "sale"}


async def details(
    ex: Executor, ctx: QueryContext, page: str, minor_units: dict[str, int]
) -> object:
    """Leads and sales of the window, newest first, `ctx.limit` per page."""
    after = cursor.decode_position(page)
    pages = await asyncio.gather(
        *(
            listings.run_list(
                ex.ch,
                ListQuery(
                    kind=kind,
                    workspace_id=ctx.workspace_id,
                    start=ctx.window.start,
                    end=ctx.window.end,
                    columns=DETAIL_COLUMNS[kind],
                    limit=ctx.limit + 1,
                    link_ids=ctx.link_ids,
                    filters=ctx.filters,
                    include_bots=ctx.include_bots,
                    after=after,
                    descending=True,
                ),
            )
            for kind in DETAIL_COLUMNS
        )
    )
    merged = sorted(
        ((row, kind) for kind, rows in zip(DETAIL_COLUMNS, pages, strict=True) for row in rows),
        key=lambda item: (item[0]["timestamp"], item[0]["event_id"]),
        reverse=True,
    )
    page_rows, more = merged[: ctx.limit], len(merged) > ctx.limit
    tz = ctx.window.tz
    events = []
    for row, kind in page_rows:
        sale = kind == "sales"
        currency = str(row["currency"]) if sale else None
        events.append(
            q.ConversionEvent(
                event_id=row["event_id"],
                kind=KIND_NAMES[kind],
                timestamp=datetime.fromtimestamp(row["timestamp"], UTC).astimezone(tz).isoformat(),
                # Absent and unknown values are null: "" strings, the id 0.
                customer_id=row["customer_id"] or None,
                event_name=row["event_name"] or None,
                amount=int(row["amount"]) / 10 ** minor_units.get(currency or "", 2)
                if sale
                else None,
                currency=currency or None,
                click_id=row["click_id"] or None,
                link_id=row["link_id"] or None,
                country=row["country"] or None,
                device=row["device"] or None,
                referrer=row["referrer"] or None,
            )
        )
    last = page_rows[-1][0] if page_rows else None
    next_cursor = cursor.encode([last["timestamp"], last["event_id"]]) if more and last else None
    return q.ConversionDetailsResponse(
        events=events, next_cursor=next_cursor, meta=ctx.meta(ex.sources)
    )


async def funnel(ex: Executor, ctx: QueryContext) -> q.FunnelResponse:
    """Click -> lead -> sale: counts, rate from the previous step and from the first."""
    found = totals(await per_kind(ex, ctx, EVENT_KINDS, with_visitors=False))
    counts = [("click", found.clicks), ("lead", found.leads), ("sale", found.sales)]
    steps = [
        q.FunnelStep(
            name=name,
            count=count,
            rate_from_previous=rate(count, counts[i - 1][1]) if i else 1.0,
            rate_from_start=rate(count, counts[0][1]),
        )
        for i, (name, count) in enumerate(counts)
    ]
    return q.FunnelResponse(steps=steps, meta=ctx.meta(ex.sources))
