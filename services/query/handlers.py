"""QueryService's RPCs as plain async functions by RPC name, each a preset over the one engine.

The gRPC servicer, batch queries and any other caller run an RPC through HANDLERS; none of
them needs a servicer context."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message

from services import errors, protos
from services.auth.principal import Principal
from services.auth.signing import Signer, signer
from services.contract.compiled import contract
from services.query import (
    billing,
    breakdowns,
    conversions,
    dashboard_tokens,
    drilldowns,
    embed,
    embed_tokens,
    params,
    presets,
    query_api,
    raw,
)
from services.query.aggregates import DailyAggregates
from services.query.breakdowns import DEVICE_DIMENSIONS, RANKINGS, choose
from services.query.executor import Executor
from services.query.scope import require_link
from services.stores.deps import Deps


@dataclass(frozen=True)
class QueryDeps:
    """What the handlers share across calls: the stores, the token signer, the embed grants."""

    deps: Deps
    signer: Signer
    embeds: embed_tokens.EmbedGrants

    @classmethod
    def of(cls, deps: Deps) -> QueryDeps:
        """The handlers' dependencies over deps."""
        made = signer(deps.settings)
        grants = embed_tokens.EmbedGrants(deps.pg, made, deps.settings.auth_cache_seconds)
        return cls(deps, made, grants)


@dataclass(frozen=True)
class Call:
    """One call of a handler: who calls, and what to tell when an answer came from the fallback
    (such an answer must not be cached)."""

    caller: Principal | None  # None only for public RPCs, which authenticate by their own token
    on_fallback: Callable[[], None]

    @property
    def principal(self) -> Principal:
        """The authenticated caller."""
        if self.caller is None:
            raise errors.unauthenticated("this call has no authenticated caller")
        return self.caller


Handler = Callable[[QueryDeps, Call, Any], Awaitable[Message]]


def _executor(q: QueryDeps, call: Call) -> Executor:
    """An executor with the daily aggregates as fallback, reported to the call."""
    return Executor(q.deps.ch, fallback=DailyAggregates(q.deps.pg), on_fallback=call.on_fallback)


async def _open(q: QueryDeps, call: Call, request: Any) -> tuple[Executor, params.QueryContext]:
    ctx = await params.resolve(q.deps, call.principal, request)
    return _executor(q, call), ctx


async def _overview(q: QueryDeps, call: Call, request: Any) -> Message:
    return await presets.overview(*await _open(q, call, request))


async def _timeseries(q: QueryDeps, call: Call, request: Any) -> Message:
    return await presets.timeseries(*await _open(q, call, request))


def _breakdown(dimension: str) -> Handler:
    async def handler(q: QueryDeps, call: Call, request: Any) -> Message:
        ex, ctx = await _open(q, call, request)
        return await breakdowns.breakdown(ex, ctx, dimension)

    return handler


async def _devices(q: QueryDeps, call: Call, request: Any) -> Message:
    by = choose(request.by, DEVICE_DIMENSIONS, "by", "device")
    ex, ctx = await _open(q, call, request)
    return await breakdowns.breakdown(ex, ctx, by)


def _ranked_by_dimension(rank_by: str) -> Handler:
    async def handler(q: QueryDeps, call: Call, request: Any) -> Message:
        dimension = breakdowns.dimension_param(request.dimension)
        ex, ctx = await _open(q, call, request)
        return await breakdowns.breakdown(ex, ctx, dimension, rank_by=rank_by)

    return handler


def _ranked_groups(group: str) -> Handler:
    async def handler(q: QueryDeps, call: Call, request: Any) -> Message:
        rank_by = choose(request.sort, tuple(RANKINGS), "sort", "clicks")
        ex, ctx = await _open(q, call, request)
        return await breakdowns.group_breakdown(ex, q.deps.pg, ctx, group, rank_by)

    return handler


async def _budgets(q: QueryDeps, call: Call, request: Any) -> Message:
    ex, ctx = await _open(q, call, request)
    campaign = params.optional(request, "campaign_id")
    zone = call.principal.timezone
    return await billing.budgets(ex, q.deps.pg, ctx, campaign, zone, datetime.now(UTC))


async def _usage(q: QueryDeps, call: Call, request: Any) -> Message:
    return await billing.usage(_executor(q, call), q.deps.pg, call.principal)


async def _rules(q: QueryDeps, call: Call, request: Any) -> Message:
    ex, ctx = await _open(q, call, request)
    return await drilldowns.rules(ex, q.deps.pg, ctx, request.link_id)


async def _rule_conditions(q: QueryDeps, call: Call, request: Any) -> Message:
    ex, ctx = await _open(q, call, request)
    return await drilldowns.rule_conditions(ex, q.deps.pg, ctx, request.link_id, request.rule_id)


async def _traffic_flow(q: QueryDeps, call: Call, request: Any) -> Message:
    ex, ctx = await _open(q, call, request)
    link = await require_link(q.deps.pg, ctx.workspace_id, request.link_id)
    return await drilldowns.traffic_flow(ex, ctx, link)


async def _click_paths(q: QueryDeps, call: Call, request: Any) -> Message:
    ex, ctx = await _open(q, call, request)
    minutes = params.optional(request, "session_minutes")
    return await drilldowns.click_paths(ex, q.deps.pg, ctx, request.link_id, minutes)


async def _conversion_details(q: QueryDeps, call: Call, request: Any) -> Message:
    ex, ctx = await _open(q, call, request)
    units = {code: cur.minor_units for code, cur in (await q.deps.fx.currencies()).items()}
    return await conversions.details(ex, ctx, request.cursor, units)


async def _composite(q: QueryDeps, call: Call, request: Any) -> Message:
    # Per bucket without a dimension, per dimension value with one: each honours only its own.
    if not request.dimension and request.HasField("limit"):
        raise errors.invalid_argument(
            "limit", "parameter 'limit' is supported by composite only with a dimension"
        )
    if request.dimension and request.granularity:
        raise errors.invalid_argument(
            "granularity",
            "parameter 'granularity' is supported by composite only without a dimension",
        )
    ex, ctx = await _open(q, call, request)
    if not request.dimension:
        points = await presets.points(ex, ctx)
        return protos.query_pb2.CompositeResponse(points=points, meta=ctx.meta(ex.sources))
    dimension = breakdowns.dimension_param(request.dimension)
    rows = await breakdowns.breakdown(ex, ctx, dimension)
    return protos.query_pb2.CompositeResponse(
        rows=rows.rows, dimension=dimension, meta=ctx.meta(ex.sources)
    )


async def _funnel(q: QueryDeps, call: Call, request: Any) -> Message:
    return await conversions.funnel(*await _open(q, call, request))


async def _query(q: QueryDeps, call: Call, request: Any) -> Message:
    return await query_api.query(q.deps, _executor(q, call), call.principal, request)


async def _embed(q: QueryDeps, call: Call, request: Any) -> Message:
    # Public: the widget authenticates by its signed token.
    grant = await q.embeds.grant(request.token)
    return await embed.widget(_executor(q, call), q.deps, grant, request)


async def _create_embed_token(q: QueryDeps, call: Call, request: Any) -> Message:
    caller = call.principal
    made = await embed_tokens.create(
        q.deps.pg,
        q.signer,
        workspace_id=caller.workspace_id,
        actor=caller.actor,
        link_id=params.optional(request, "link_id"),
        days=params.optional(request, "days"),
        ttl_seconds=params.optional(request, "ttl_seconds"),
    )
    return embed_tokens.to_message(made)


async def _list_embed_tokens(q: QueryDeps, call: Call, request: Any) -> Message:
    found = await embed_tokens.list_tokens(
        q.deps.pg, call.principal.workspace_id, request.include_inactive
    )
    return protos.query_pb2.ListEmbedTokensResponse(
        tokens=[embed_tokens.to_message(t) for t in found]
    )


async def _revoke_embed_token(q: QueryDeps, call: Call, request: Any) -> Message:
    caller = call.principal
    revoked = await embed_tokens.revoke(
        q.deps.pg, request.id, actor=caller.actor, workspace_id=caller.workspace_id
    )
    return embed_tokens.to_message(revoked)


async def _create_dashboard_token(q: QueryDeps, call: Call, request: Any) -> Message:
    caller = call.principal
    made = await dashboard_tokens.create(
        q.deps.pg,
        q.signer,
        workspace_id=caller.workspace_id,
        actor=caller.actor,
        ttl_seconds=params.optional(request, "ttl_seconds"),
        label=request.label,
    )
    return dashboard_tokens.to_message(made)


async def _list_dashboard_tokens(q: QueryDeps, call: Call, request: Any) -> Message:
    found = await dashboard_tokens.list_tokens(
        q.deps.pg, call.principal.workspace_id, request.include_inactive
    )
    return protos.dashboard_pb2.ListDashboardTokensResponse(
        tokens=[dashboard_tokens.to_message(t) for t in found]
    )


async def _revoke_dashboard_token(q: QueryDeps, call: Call, request: Any) -> Message:
    caller = call.principal
    revoked = await dashboard_tokens.revoke(
        q.deps.pg, request.id, actor=caller.actor, workspace_id=caller.workspace_id
    )
    return dashboard_tokens.to_message(revoked)


async def _raw_events(q: QueryDeps, call: Call, request: Any) -> Message:
    return await raw.raw_events(q.deps.ch, q.deps.pg, call.principal, request)


def _honouring(rpc: str, handler: Handler) -> Handler:
    """handler behind the contract's check that the request sets only fields the RPC honours."""
    service = protos.query_pb2.DESCRIPTOR.services_by_name["QueryService"].full_name
    path = f"/{service}/{rpc}"

    async def checked(q: QueryDeps, call: Call, request: Any) -> Message:
        contract().by_path[path].refuse_unhonoured(request)
        return await handler(q, call, request)

    return checked


# Link routes bind link_id from the path; params.resolve checks it against the workspace.
_HANDLERS: dict[str, Handler] = {
    # Workspace scope.
    "GetWorkspaceOverview": _overview,
    "GetWorkspaceTimeseries": _timeseries,
    "GetWorkspaceRegions": _breakdown("region"),
    "GetWorkspaceContinents": _breakdown("continent"),
    "GetWorkspaceDevices": _devices,
    "GetWorkspaceTriggers": _breakdown("trigger"),
    "GetWorkspaceTopFolders": _ranked_groups("folder"),
    "GetWorkspaceTopTags": _ranked_groups("tag"),
    "GetCampaignRanking": _ranked_groups("campaign"),
    "GetWorkspaceBudgets": _budgets,
    "GetWorkspaceUsage": _usage,
    # Link scope.
    "GetLinkSummary": _overview,
    "GetLinkTimeseries": _timeseries,
    "GetLinkGeo": _breakdown("country"),
    "GetLinkCities": _breakdown("city"),
    "GetLinkRegions": _breakdown("region"),
    "GetLinkContinents": _breakdown("continent"),
    "GetLinkDevices": _devices,
    "GetLinkReferrers": _breakdown("referrer"),
    "GetLinkTriggers": _breakdown("trigger"),
    "GetLinkRules": _rules,
    "GetLinkRuleConditions": _rule_conditions,
    "GetLinkTrafficFlow": _traffic_flow,
    "GetLinkClickPaths": _click_paths,
    # Unified overview and conversions.
    "GetOverview": _overview,
    "GetConversionDetails": _conversion_details,
    "GetLeads": _overview,
    "GetLeadsTimeseries": _timeseries,
    "GetLeadsBreakdown": _ranked_by_dimension("leads"),
    "GetSales": _overview,
    "GetSalesTimeseries": _timeseries,
    "GetSalesBreakdown": _ranked_by_dimension("revenue"),
    "GetComposite": _composite,
    "GetFunnel": _funnel,
    "Query": _query,
    # Embeds and raw events.
    "GetEmbed": _embed,
    "CreateEmbedToken": _create_embed_token,
    "ListEmbedTokens": _list_embed_tokens,
    "RevokeEmbedToken": _revoke_embed_token,
    "CreateDashboardToken": _create_dashboard_token,
    "ListDashboardTokens": _list_dashboard_tokens,
    "RevokeDashboardToken": _revoke_dashboard_token,
    "GetRawEvents": _raw_events,
}

# What the servicer and batch queries run: each refuses the fields its RPC does not honour.
HANDLERS: dict[str, Handler] = {rpc: _honouring(rpc, h) for rpc, h in _HANDLERS.items()}
