"""Exact answers of each route shape, by SQL written here on ClickHouse (not the engine's).

count(), uniqExact(visitor_id), sum(amount × factor) with the request's resolved context
(window, zone, scope, currency factors); a day bucket is `toDate(timestamp, zone)`, campaigns
come from the links table of PostgreSQL. Answers are in `answers`' normalised form, so
`answers.differences` compares them with the gateway's (visitors within its tolerance: the
engine's visitor counts may be approximate, these are exact).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from services.query.params import QueryContext
from services.stores.clickhouse import ClickHouse
from services.timerange import local_midnight
from tests.bench import answers
from tests.bench.answers import Answer
from tests.bench.routes import Breakdown, Shape

RANKINGS: dict[str, tuple[str, int]] = {"clicks": ("clicks", 0), "revenue": ("sales", 2)}
BUCKETS = {
    "day": "toDate(timestamp, %(tz)s)",
    "week": "toMonday(toDate(timestamp, %(tz)s))",
    "month": "toStartOfMonth(toDate(timestamp, %(tz)s))",
    "hour": "toStartOfHour(timestamp)",
}


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


class ExactAnswers:
    """Answers of the route shapes from the raw event tables of one database."""

    def __init__(self, ch: ClickHouse, pg: asyncpg.Pool) -> None:
        self.ch = ch
        self.pg = pg

    async def answer(self, shape: Shape, ctx: QueryContext) -> Answer:
        """The route's answer."""
        return await answers.by_shape(self, shape, ctx)

    def _where(self, ctx: QueryContext, lower: datetime, args: dict[str, Any]) -> str:
        args.update(ws=ctx.workspace_id, lo=_epoch(lower), hi=_epoch(ctx.window.end))
        where = [
            "workspace_id = %(ws)s",
            "timestamp >= toDateTime(%(lo)s)",
            "timestamp < toDateTime(%(hi)s)",
        ]
        if not ctx.include_bots:
            where.append("is_bot = 0")
        if ctx.link_ids is not None:
            args["links"] = tuple(ctx.link_ids) or (0,)
            where.append("link_id IN %(links)s")
        return " AND ".join(where)

    def _metrics(
        self, kind: str, ctx: QueryContext, args: dict[str, Any], cond: str = ""
    ) -> list[str]:
        """events, visitors, revenue of a kind (0 where the kind has none), optionally filtered."""
        events = f"countIf({cond})" if cond else "count()"
        visitors = "0"
        if kind == "clicks":
            visitors = f"uniqExactIf(visitor_id, {cond})" if cond else "uniqExact(visitor_id)"
        revenue = "0"
        if kind == "sales":
            args["codes"] = list(ctx.revenue_factors) or [""]
            args["factors"] = [float(v) for v in ctx.revenue_factors.values()] or [0.0]
            value = "amount * transform(currency, %(codes)s, %(factors)s, 0.)"
            revenue = f"sumIf({value}, {cond})" if cond else f"sum({value})"
        return [events, visitors, revenue]

    async def _one(self, sql: str, args: dict[str, Any]) -> list[tuple[Any, ...]]:
        return await self.ch.fetch(sql, args)

    async def _totals(self, kind: str, ctx: QueryContext) -> tuple[Any, ...]:
        args: dict[str, Any] = {}
        where = self._where(ctx, ctx.window.previous_start, args)
        args["start"] = _epoch(ctx.window.start)
        now = self._metrics(kind, ctx, args, "timestamp >= toDateTime(%(start)s)")
        before = self._metrics(kind, ctx, args, "timestamp < toDateTime(%(start)s)")
        rows = await self._one(f"SELECT {', '.join(now + before)} FROM {kind} WHERE {where}", args)
        return tuple(rows[0])

    async def overview(self, kinds: tuple[str, ...], ctx: QueryContext) -> Answer:
        """Totals of the window and of the period before it."""
        found = await asyncio.gather(*(self._totals(kind, ctx) for kind in kinds))
        return answers.overview(dict(zip(kinds, found, strict=True)))

    def _label(self, bucket: Any, ctx: QueryContext) -> str:
        tz = ctx.window.tz
        if isinstance(bucket, datetime):  # an hour, in UTC
            return bucket.replace(tzinfo=UTC).astimezone(tz).isoformat()
        assert isinstance(bucket, date)
        return local_midnight(bucket, tz).astimezone(tz).isoformat()

    async def timeseries(self, kinds: tuple[str, ...], ctx: QueryContext) -> Answer:
        """Metrics per bucket of the window's granularity (empty buckets left out)."""

        async def buckets(kind: str) -> list[tuple[Any, ...]]:
            args: dict[str, Any] = {"tz": ctx.window.tz.key}
            where = self._where(ctx, ctx.window.start, args)
            bucket = BUCKETS[ctx.window.granularity]
            return await self._one(
                f"SELECT {bucket} AS b, {', '.join(self._metrics(kind, ctx, args))} FROM {kind}"
                f" WHERE {where} GROUP BY b",
                args,
            )

        found = await asyncio.gather(*(buckets(kind) for kind in kinds))
        names: dict[str, tuple[str | None, ...]] = {
            "clicks": ("clicks", "uniqueVisitors", None),
            "leads": ("leads", None, None),
            "sales": ("sales", None, "revenue"),
        }
        answer: Answer = {}
        for kind, rows in zip(kinds, found, strict=True):
            for row in rows:
                label = self._label(row[0], ctx)
                for name, value in zip(names[kind], row[1:], strict=True):
                    if name is not None:
                        answer[f"{label}.{name}"] = (
                            round(float(value), 2) if name == "revenue" else value
                        )
        return answer

    async def _campaigns(self, workspace_id: int) -> tuple[list[int], list[int]]:
        rows = await self.pg.fetch(
            "SELECT id, campaign_id FROM links WHERE workspace_id = $1 AND campaign_id IS NOT NULL",
            workspace_id,
        )
        return [int(r["id"]) for r in rows] or [0], [int(r["campaign_id"]) for r in rows] or [0]

    async def breakdown(self, shape: Breakdown, ctx: QueryContext) -> Answer:
        """Top ctx.limit values ranked by the shape's metric, every kind's metrics for them."""
        lead, index = RANKINGS[shape.rank_by]
        base: dict[str, Any] = {}
        if shape.dimension == "campaign":
            base["cl"], base["cc"] = await self._campaigns(ctx.workspace_id)
            key = (
                "transform(link_id, CAST(%(cl)s AS Array(UInt64)), CAST(%(cc)s AS Array(UInt64)),"
                " toUInt64(0))"
            )
            keep = f" AND {key} != 0"
        else:
            key, keep = shape.dimension, ""

        async def per_key(kind: str, only: list[Any] | None) -> list[tuple[Any, ...]]:
            args = dict(base)
            where = self._where(ctx, ctx.window.start, args) + keep
            if only is not None:
                args["only"] = tuple(only)
                where += f" AND {key} IN %(only)s"
            order = f" ORDER BY m{index} DESC, k LIMIT {int(ctx.limit)}" if only is None else ""
            metrics = ", ".join(
                f"{m} AS m{i}" for i, m in enumerate(self._metrics(kind, ctx, args))
            )
            return await self._one(
                f"SELECT {key} AS k, {metrics} FROM {kind} WHERE {where} GROUP BY k{order}",
                args,
            )

        async def whole() -> float:
            # A share is of every event of the window, those of links in no campaign included.
            args: dict[str, Any] = {}
            where = self._where(ctx, ctx.window.start, args)
            rows = await self._one(f"SELECT {', '.join(self._metrics(lead, ctx, args))} FROM {lead}"
                                   f" WHERE {where}", args)  # fmt: skip
            return float(rows[0][index] or 0)

        ranked, total = await asyncio.gather(per_key(lead, None), whole())
        keys = [r[0] for r in ranked]
        rest: tuple[str, ...] = tuple(
            k for k in ("clicks", "leads", "sales") if k in shape.kinds and k != lead
        )
        found = await asyncio.gather(*(per_key(kind, keys) for kind in rest)) if keys else []
        by_kind = {
            kind: {r[0]: r[1:] for r in rows} for kind, rows in zip(rest, found, strict=True)
        }
        by_kind[lead] = {r[0]: r[1:] for r in ranked}
        return answers.breakdown(keys, by_kind, lead, index, float(total))

    async def funnel(self, ctx: QueryContext) -> Answer:
        """Events of each kind in the window."""

        async def count(kind: str) -> int:
            args: dict[str, Any] = {}
            where = self._where(ctx, ctx.window.start, args)
            return int((await self._one(f"SELECT count() FROM {kind} WHERE {where}", args))[0][0])

        clicks, leads, sales = await asyncio.gather(
            *(count(k) for k in ("clicks", "leads", "sales"))
        )
        return {"click.count": clicks, "lead.count": leads, "sale.count": sales}
