"""The same answers computed by hand-written SQL on the plain PostgreSQL tables.

This is what a user without ClickHouse would write: count(*), count(DISTINCT visitor_id),
sum(amount * rate) over bench_clicks/leads/sales, date_trunc in the time zone for buckets, the
links table for campaigns; independent queries run concurrently on a pool, as the engine does.
Results come back in the normalised form of `answers`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import asyncpg

from services.query.params import QueryContext
from tests.bench import answers
from tests.bench.answers import Answer
from tests.bench.pgtables import table
from tests.bench.routes import Breakdown, Shape

# What a breakdown is ranked by: rank_by -> (kind, metric).
RANKINGS = {"clicks": ("clicks", "events"), "revenue": ("sales", "revenue")}


class Query:
    """SQL text with $n placeholders built alongside its arguments."""

    def __init__(self) -> None:
        self.args: list[Any] = []

    def arg(self, value: Any, cast: str = "") -> str:
        """Placeholder of a new argument."""
        self.args.append(value)
        return f"${len(self.args)}{cast}"


def _source(q: Query, kind: str, ctx: QueryContext, lower: datetime, dimension: str) -> str:
    """FROM … WHERE … of one kind over [lower, window end) with the context's scope."""
    sql = f"FROM {table(kind)} e"
    if kind == "sales":
        codes = q.arg(list(ctx.revenue_factors), "::text[]")
        factors = q.arg([float(v) for v in ctx.revenue_factors.values()], "::float8[]")
        sql += f" LEFT JOIN unnest({codes}, {factors}) AS fx(code, factor) ON fx.code = e.currency"
    if dimension == "campaign":
        sql += " JOIN links l ON l.id = e.link_id"
    where = [
        f"e.workspace_id = {q.arg(ctx.workspace_id)}",
        f"e.timestamp >= {q.arg(lower)}",
        f"e.timestamp < {q.arg(ctx.window.end)}",
    ]
    if not ctx.include_bots:
        where.append("e.is_bot = 0")
    if ctx.link_ids is not None:
        where.append(f"e.link_id = ANY({q.arg(list(ctx.link_ids), '::bigint[]')})")
    if dimension == "campaign":
        where.append("l.campaign_id IS NOT NULL")
    return f"{sql} WHERE {' AND '.join(where)}"


def _metrics(kind: str, condition: str = "") -> list[str]:
    """events, visitors, revenue of a kind (0 where the kind has none), optionally filtered."""
    only = f" FILTER (WHERE {condition})" if condition else ""
    visitors = f"count(DISTINCT e.visitor_id){only}" if kind == "clicks" else "0"
    revenue = f"coalesce(sum(e.amount * coalesce(fx.factor, 0)){only}, 0)"
    return [f"count(*){only}", visitors, revenue if kind == "sales" else "0"]


def _key(dimension: str) -> str:
    return "l.campaign_id" if dimension == "campaign" else f"e.{dimension}"


class PostgresBaseline:
    """Answers of each route shape from the bench_* tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def _fetch(self, sql: str, q: Query) -> list[asyncpg.Record]:
        return await self.pool.fetch(sql, *q.args)

    async def answer(self, shape: Shape, ctx: QueryContext) -> Answer:
        """The route's answer computed on PostgreSQL."""
        return await answers.by_shape(self, shape, ctx)

    async def _totals(self, kind: str, ctx: QueryContext, previous: bool) -> tuple[Any, ...]:
        q = Query()
        lower = ctx.window.previous_start if previous else ctx.window.start
        if previous:
            start = q.arg(ctx.window.start)
            metrics = _metrics(kind, f"e.timestamp >= {start}") + _metrics(
                kind, f"e.timestamp < {start}"
            )
        else:
            metrics = _metrics(kind)
        sql = f"SELECT {', '.join(metrics)} {_source(q, kind, ctx, lower, '')}"
        return tuple((await self._fetch(sql, q))[0])

    async def overview(self, kinds: tuple[str, ...], ctx: QueryContext) -> Answer:
        """Totals of the window and the previous period per kind."""
        found = await asyncio.gather(*(self._totals(kind, ctx, True) for kind in kinds))
        return answers.overview(dict(zip(kinds, found, strict=True)))

    async def _buckets(self, kind: str, ctx: QueryContext) -> list[asyncpg.Record]:
        q = Query()
        unit, tz = q.arg(ctx.window.granularity), q.arg(ctx.window.tz.key)
        source = _source(q, kind, ctx, ctx.window.start, "")
        sql = (
            f"SELECT date_trunc({unit}, e.timestamp, {tz}) AS bucket, {', '.join(_metrics(kind))}"
            f" {source} GROUP BY 1"
        )
        return await self._fetch(sql, q)

    async def timeseries(self, kinds: tuple[str, ...], ctx: QueryContext) -> Answer:
        """Metrics per bucket (empty buckets are left out: answers treat missing as 0)."""
        found = await asyncio.gather(*(self._buckets(kind, ctx) for kind in kinds))
        answer: Answer = {}
        names: dict[str, tuple[str | None, ...]] = {
            "clicks": ("clicks", "uniqueVisitors", None),
            "leads": ("leads", None, None),
            "sales": ("sales", None, "revenue"),
        }
        for kind, rows in zip(kinds, found, strict=True):
            for row in rows:
                label = row["bucket"].astimezone(ctx.window.tz).isoformat()
                for name, value in zip(names[kind], tuple(row)[1:], strict=True):
                    if name is not None:
                        answer[f"{label}.{name}"] = (
                            round(float(value), 2) if name == "revenue" else value
                        )
        return answer

    async def breakdown(self, shape: Breakdown, ctx: QueryContext) -> Answer:
        """Top ctx.limit values ranked by the shape's metric, every kind's metrics for them."""
        lead, metric = RANKINGS[shape.rank_by]
        key = _key(shape.dimension)
        order = key if shape.dimension == "campaign" else f'{key} COLLATE "C"'
        q = Query()
        source = _source(q, lead, ctx, ctx.window.start, shape.dimension)
        ranked_sql = (
            f"SELECT {key} AS k, {', '.join(_metrics(lead))} {source} GROUP BY 1"
            f" ORDER BY {2 if metric == 'events' else 4} DESC, {order} LIMIT {q.arg(ctx.limit)}"
        )
        total_q = Query()
        whole = "count(*)" if metric == "events" else _metrics(lead)[2]
        total_sql = f"SELECT {whole} {_source(total_q, lead, ctx, ctx.window.start, '')}"
        ranked, total = await asyncio.gather(
            self._fetch(ranked_sql, q), self._fetch(total_sql, total_q)
        )
        keys = [r["k"] for r in ranked]
        rest = tuple(k for k in ("clicks", "leads", "sales") if k in shape.kinds and k != lead)

        async def others(kind: str) -> list[asyncpg.Record]:
            if not keys:
                return []
            oq = Query()
            osource = _source(oq, kind, ctx, ctx.window.start, shape.dimension)
            only = oq.arg(keys, "::bigint[]" if shape.dimension == "campaign" else "::text[]")
            sql = (
                f"SELECT {key} AS k, {', '.join(_metrics(kind))} {osource}"
                f" AND {key} = ANY({only}) GROUP BY 1"
            )
            return await self._fetch(sql, oq)

        found = await asyncio.gather(*(others(kind) for kind in rest))
        by_kind: dict[str, dict[Any, tuple[Any, ...]]] = {
            kind: {r["k"]: tuple(r)[1:] for r in rows}
            for kind, rows in zip(rest, found, strict=True)
        }
        by_kind[lead] = {r["k"]: tuple(r)[1:] for r in ranked}
        whole_value = float(total[0][0] or 0)
        return answers.breakdown(keys, by_kind, lead, 0 if metric == "events" else 2, whole_value)

    async def funnel(self, ctx: QueryContext) -> Answer:
        """Events of each kind in the window."""

        async def count(kind: str) -> int:
            q = Query()
            rows = await self._fetch(
                f"SELECT count(*) {_source(q, kind, ctx, ctx.window.start, '')}", q
            )
            return int(rows[0][0])

        clicks, leads, sales = await asyncio.gather(
            *(count(k) for k in ("clicks", "leads", "sales"))
        )
        return {"click.count": clicks, "lead.count": leads, "sale.count": sales}
