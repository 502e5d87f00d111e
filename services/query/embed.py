"""The embedded widget's data: totals, a timeseries and top countries of one token's scope."""

from __future__ import annotations

import asyncio

from services import errors, protos
from services.query import breakdowns, params, presets
from services.query.embed_tokens import Grant
from services.query.executor import Executor
from services.stores.deps import Deps

DEFAULT_COUNTRIES = 5
MAX_COUNTRIES = 20


def _scoped_query(
    grant: Grant, q: protos.common_pb2.AnalyticsQuery
) -> protos.common_pb2.AnalyticsQuery:
    """The token's scope and the last `days` days it allows (the contract refuses any other
    parameter)."""
    days = q.days if q.HasField("days") else grant.days
    if not 1 <= days <= grant.days:
        raise errors.invalid_argument(
            "days", f"days must be between 1 and {grant.days} for this embed token"
        )
    limit = q.limit if q.HasField("limit") else DEFAULT_COUNTRIES
    if not 1 <= limit <= MAX_COUNTRIES:
        raise errors.invalid_argument("limit", f"limit must be between 1 and {MAX_COUNTRIES}")
    scoped = protos.common_pb2.AnalyticsQuery(
        days=days, timezone=q.timezone, granularity=q.granularity, limit=limit
    )
    if grant.link_id is not None:
        scoped.link_id = grant.link_id
    return scoped


async def widget(
    ex: Executor, deps: Deps, grant: Grant, request: protos.query_pb2.EmbedRequest
) -> protos.query_pb2.EmbedResponse:
    """The widget of grant's scope over the range the request picks within the token's."""
    ctx = await params.resolve(deps, grant.principal, _scoped_query(grant, request.query))
    rows, points, countries = await asyncio.gather(
        presets.per_kind(ex, ctx, presets.ALL_KINDS),
        presets.points(ex, ctx),
        breakdowns.breakdown(ex, ctx, "country"),
    )
    return protos.query_pb2.EmbedResponse(
        totals=presets.totals(rows),
        points=points,
        countries=countries.rows,
        meta=ctx.meta(ex.sources),
    )
