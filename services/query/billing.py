"""Workspace money presets: campaign budgets with pacing, and plan usage this billing period."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from services.auth.principal import Principal
from services.protos import query_pb2 as q
from services.query import scope
from services.query.engine import EventQuery
from services.query.executor import Executor
from services.query.params import QueryContext
from services.query.presets import money
from services.timerange import local_midnight

BUDGETS_SQL = """
SELECT b.campaign_id, c.name, b.amount_minor, b.currency, b.cost_per_click_minor,
       b.period_start, b.period_end
FROM budgets b JOIN campaigns c ON c.id = b.campaign_id AND c.workspace_id = b.workspace_id
WHERE b.workspace_id = $1 AND b.period_start < $3 AND b.period_end >= $2
  AND ($4::bigint IS NULL OR b.campaign_id = $4)
ORDER BY c.name, b.period_start
"""


async def budgets(
    ex: Executor,
    pg: asyncpg.Pool,
    ctx: QueryContext,
    campaign_id: int | None,
    workspace_tz: str,
    now: datetime,
) -> q.BudgetsResponse:
    """Per campaign budget overlapping the window: spend (clicks x cost per click), remaining,
    and pacing = spend / the spend expected by now at an even rate over the budget period.
    Budget periods are dates in the workspace's zone, whatever zone the request asks for."""
    tz = ZoneInfo(workspace_tz)
    first = ctx.window.start.astimezone(tz).date()
    last = (ctx.window.end - timedelta(seconds=1)).astimezone(tz).date()
    found = await pg.fetch(
        BUDGETS_SQL, ctx.workspace_id, first, last + timedelta(days=1), campaign_id
    )

    async def row(budget: asyncpg.Record) -> q.BudgetRow:
        start = local_midnight(budget["period_start"], tz)
        end = local_midnight(budget["period_end"] + timedelta(days=1), tz)
        until = min(max(now, start), end)
        links = await scope.link_ids(pg, ctx.workspace_id, campaign_id=budget["campaign_id"])
        clicks = 0
        if until > start:
            result = await ex.run(
                EventQuery(
                    kind="clicks",
                    workspace_id=ctx.workspace_id,
                    start=start,
                    end=until,
                    link_ids=links,
                    include_bots=False,
                    tz=workspace_tz,  # the zone of the budget's dates (and of the aggregates)
                )
            )
            clicks = result[0].events if result else 0
        factor = ctx.revenue_factors.get(budget["currency"].strip(), 0.0)
        amount = budget["amount_minor"] * factor
        spend = clicks * budget["cost_per_click_minor"] * factor
        expected = amount * (until - start) / (end - start)
        return q.BudgetRow(
            campaign_id=budget["campaign_id"],
            name=budget["name"],
            budget=money(amount),
            spend=money(spend),
            remaining=money(amount - spend),
            pacing=round(spend / expected, 6) if expected else None,
            period_start=budget["period_start"].isoformat(),
            period_end=budget["period_end"].isoformat(),
        )

    rows = await asyncio.gather(*(row(b) for b in found))
    return q.BudgetsResponse(rows=rows, meta=ctx.meta(ex.sources))


def billing_period(now: datetime, tz_name: str) -> tuple[datetime, datetime]:
    """The calendar month holding now in the workspace's zone, as UTC instants."""
    tz = ZoneInfo(tz_name)
    today = now.astimezone(tz).date()
    first = date(today.year, today.month, 1)
    following = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
    return local_midnight(first, tz), local_midnight(following, tz)


async def usage(
    ex: Executor, pg: asyncpg.Pool, principal: Principal, now: datetime | None = None
) -> q.UsageResponse:
    """Events recorded this billing period (bots included) against the plan's monthly quota."""
    start, end = billing_period(now or datetime.now(UTC), principal.timezone)
    quota = int(
        await pg.fetchval("SELECT monthly_events FROM plans WHERE code = $1", principal.plan)
    )
    kinds = ("clicks", "leads", "sales")
    results = await asyncio.gather(
        *(
            ex.run(
                EventQuery(
                    kind=kind,
                    workspace_id=principal.workspace_id,
                    start=start,
                    end=end,
                    include_bots=True,
                    tz=principal.timezone,  # the billing month's zone (and the aggregates')
                )
            )
            for kind in kinds
        )
    )
    used = {kind: (r[0].events if r else 0) for kind, r in zip(kinds, results, strict=True)}
    used["total"] = sum(used.values())
    items = [
        q.UsageRow(
            kind=kind, used=n, quota=quota, percent=round(100 * n / quota, 2) if quota else 0
        )
        for kind, n in used.items()
    ]
    tz = ZoneInfo(principal.timezone)
    return q.UsageResponse(
        period_start=start.astimezone(tz).isoformat(),
        period_end=end.astimezone(tz).isoformat(),
        plan=principal.plan,
        items=items,
    )
