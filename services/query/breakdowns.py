"""Breakdown presets: events per value of a dimension, or per folder, tag or campaign."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import asyncpg

from services import errors
from services.geo import CONTINENT_NAMES
from services.protos import common_pb2 as c
from services.query import predicates
from services.query.engine import Row
from services.query.executor import Executor
from services.query.params import QueryContext
from services.query.predicates import DimensionFilter
from services.query.presets import ALL_KINDS, EMPTY, money, per_kind

# What a breakdown can be ranked by: (event kind, Row metric).
RANKINGS = {
    "clicks": ("clicks", "events"),
    "visitors": ("clicks", "visitors"),
    "leads": ("leads", "events"),
    "sales": ("sales", "events"),
    "revenue": ("sales", "revenue"),
}
DEVICE_DIMENSIONS = ("device", "browser", "os")
# Groups of links kept in PostgreSQL: name -> SQL of (link_id, group_id, group name) pairs.
LINK_GROUPS = {
    "folder": "SELECT l.id, f.id, f.name FROM links l JOIN folders f ON f.id = l.folder_id"
    " WHERE l.workspace_id = $1",
    "tag": "SELECT lt.link_id, t.id, t.name FROM link_tags lt JOIN tags t ON t.id = lt.tag_id"
    " WHERE lt.workspace_id = $1",
    "campaign": "SELECT l.id, c.id, c.name FROM links l JOIN campaigns c ON c.id = l.campaign_id"
    " WHERE l.workspace_id = $1",
}


def choose(value: str, allowed: tuple[str, ...], field: str, default: str) -> str:
    """value if it is one of allowed (default when empty); 400 naming field otherwise."""
    chosen = value.strip().lower() or default
    if chosen not in allowed:
        raise errors.invalid_argument(field, f"{field} must be one of {', '.join(allowed)}")
    return chosen


def _label(dimension: str, key: object, labels: dict[object, str]) -> str:
    if key in labels:
        return labels[key]
    if dimension == "continent":
        return CONTINENT_NAMES.get(str(key), "(unknown)")
    return str(key) if key not in ("", 0) else "(unknown)"


def _metric(row: Row, metric: str) -> float:
    return float(getattr(row, metric))


async def breakdown(
    ex: Executor,
    ctx: QueryContext,
    dimension: str,
    *,
    kinds: tuple[str, ...] = ALL_KINDS,
    rank_by: str = "clicks",
    labels: dict[object, str] | None = None,
    link_groups: tuple[tuple[int, int], ...] = (),
    extra_filters: tuple[DimensionFilter, ...] = (),
) -> c.BreakdownResponse:
    """The top `ctx.limit` values of dimension ranked by rank_by, with every kind's metrics."""
    lead_kind, metric = RANKINGS[rank_by]
    kinds = tuple(k for k in ALL_KINDS if k in kinds or k == lead_kind)
    base = replace(ctx, filters=ctx.filters + extra_filters)
    shape = {"group_by": (dimension,), "link_groups": link_groups}
    ranked, total = await asyncio.gather(
        ex.run(base.event_query(lead_kind, order_by=metric, limit=ctx.limit, **shape)),
        ex.run(
            base.event_query(lead_kind, link_groups=link_groups, with_visitors=metric == "visitors")
        ),
    )
    keys = tuple(r.key for r in ranked)
    others: dict[str, list[Row]] = {}
    rest = tuple(k for k in kinds if k != lead_kind)
    if keys and rest:
        only_top = (DimensionFilter(dimension, keys),) if dimension != "group" else ()
        narrowed = replace(base, filters=base.filters + only_top)
        others = await per_kind(ex, narrowed, rest, **shape)
    by_kind = {kind: {r.key: r for r in others.get(kind, [])} for kind in ALL_KINDS}
    by_kind[lead_kind] = {r.key: r for r in ranked}
    whole = _metric(total[0] if total else EMPTY, metric)
    rows = []
    for key in keys:
        clicks, leads, sales = (by_kind[k].get(key, EMPTY) for k in ALL_KINDS)
        rows.append(
            c.BreakdownRow(
                key=str(key),
                label=_label(dimension, key, labels or {}),
                clicks=clicks.events,
                unique_visitors=clicks.visitors,
                leads=leads.events,
                sales=sales.events,
                revenue=money(sales.revenue),
                share=round(_metric(by_kind[lead_kind][key], metric) / whole, 6) if whole else 0.0,
            )
        )
    return c.BreakdownResponse(dimension=dimension, rows=rows, meta=ctx.meta(ex.sources))


async def group_breakdown(
    ex: Executor, pg: asyncpg.Pool, ctx: QueryContext, group: str, rank_by: str = "clicks"
) -> c.BreakdownResponse:
    """Breakdown per folder, tag or campaign of the workspace's links (links in none left out)."""
    pairs = await pg.fetch(LINK_GROUPS[group], ctx.workspace_id)
    allowed = None if ctx.link_ids is None else set(ctx.link_ids)
    link_groups = tuple((r[0], r[1]) for r in pairs if allowed is None or r[0] in allowed)
    labels: dict[object, str] = {r[1]: r[2] for r in pairs}
    if not link_groups:
        return c.BreakdownResponse(dimension=group, meta=ctx.meta(ex.sources))
    response = await breakdown(
        ex, ctx, "group", rank_by=rank_by, labels=labels, link_groups=link_groups
    )
    response.dimension = group
    return response


def dimension_param(value: str, default: str = "country") -> str:
    """The `dimension` parameter of leads/sales breakdowns and composite."""
    return choose(value, tuple(predicates.DIMENSIONS), "dimension", default)
