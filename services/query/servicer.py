"""QueryService: binds each RPC to its preset over the one query engine."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from services import pb
from services.auth import principal
from services.auth.signing import signer
from services.query import (
    billing,
    breakdowns,
    conversions,
    drilldowns,
    embed,
    embed_tokens,
    params,
    presets,
    raw,
)
from services.query.aggregates import DailyAggregates
from services.query.breakdowns import DEVICE_DIMENSIONS, RANKINGS, choose
from services.query.executor import Executor
from services.query.scope import require_link
from services.server.trailers import NO_STORE_TRAILER
from services.stores.deps import Deps


class QueryServicer(pb.query_pb2_grpc.QueryServiceServicer):
    """Workspace, link and conversion analytics."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._signer = signer(deps.settings)
        self._embeds = embed_tokens.EmbedGrants(
            deps.pg, self._signer, deps.settings.auth_cache_seconds
        )

    def _executor(self, context: grpc.aio.ServicerContext) -> Executor:
        """An executor with the daily aggregates as fallback; their answers are marked no-store."""
        return Executor(
            self.deps.ch,
            fallback=DailyAggregates(self.deps.pg),
            on_fallback=lambda: context.set_trailing_metadata(((NO_STORE_TRAILER, "1"),)),
        )

    async def _open(
        self, request: pb.common_pb2.AnalyticsQuery, context: grpc.aio.ServicerContext
    ) -> tuple[Executor, params.QueryContext]:
        ctx = await params.resolve(self.deps, principal.current(), request)
        return self._executor(context), ctx

    async def _breakdown(self, request, context, dimension: str, **options):  # noqa: ANN001, ANN202
        ex, ctx = await self._open(request, context)
        return await breakdowns.breakdown(ex, ctx, dimension, **options)

    async def _devices(self, request, context):  # noqa: ANN001, ANN202
        by = choose(request.by, DEVICE_DIMENSIONS, "by", "device")
        return await self._breakdown(request, context, by)

    # Workspace scope.
    async def GetWorkspaceOverview(self, request, context):  # noqa: N802, ANN001
        return await presets.overview(*await self._open(request, context))

    async def GetWorkspaceTimeseries(self, request, context):  # noqa: N802, ANN001
        return await presets.timeseries(*await self._open(request, context))

    async def GetWorkspaceRegions(self, request, context):  # noqa: N802, ANN001
        return await self._breakdown(request, context, "region")

    async def GetWorkspaceContinents(self, request, context):  # noqa: N802, ANN001
        return await self._breakdown(request, context, "continent")

    async def GetWorkspaceDevices(self, request, context):  # noqa: N802, ANN001
        return await self._devices(request, context)

    async def GetWorkspaceTriggers(self, request, context):  # noqa: N802, ANN001
        return await self._breakdown(request, context, "trigger")

    async def GetWorkspaceTopFolders(self, request, context):  # noqa: N802, ANN001
        ex, ctx = await self._open(request, context)
        return await breakdowns.group_breakdown(ex, self.deps.pg, ctx, "folder")

    async def GetWorkspaceTopTags(self, request, context):  # noqa: N802, ANN001
        ex, ctx = await self._open(request, context)
        return await breakdowns.group_breakdown(ex, self.deps.pg, ctx, "tag")

    async def GetCampaignRanking(self, request, context):  # noqa: N802, ANN001
        rank_by = choose(request.sort, tuple(RANKINGS), "sort", "clicks")
        ex, ctx = await self._open(request, context)
        return await breakdowns.group_breakdown(ex, self.deps.pg, ctx, "campaign", rank_by)

    async def GetWorkspaceBudgets(self, request, context):  # noqa: N802, ANN001
        ex, ctx = await self._open(request, context)
        campaign = params.optional(request, "campaign_id")
        zone = principal.current().timezone
        return await billing.budgets(ex, self.deps.pg, ctx, campaign, zone, datetime.now(UTC))

    async def GetWorkspaceUsage(self, request, context):  # noqa: N802, ANN001
        return await billing.usage(self._executor(context), self.deps.pg, principal.current())

    # Link scope: the path binds link_id, which params.resolve checks against the workspace.
    async def GetLinkSummary(self, request, context):  # noqa: N802, ANN001
        return await presets.overview(*await self._open(request, context))

    async def GetLinkTimeseries(self, request, context):  # noqa: N802, ANN001
        return await presets.timeseries(*await self._open(request, context))

    async def GetLinkGeo(self, request, context):  # noqa: N802, ANN001
        return await self._breakdown(request, context, "country")

    async def GetLinkCities(self, request, context):  # noqa: N802, ANN001
        return await self._breakdown(request, context, "city")

    async def GetLinkRegions(self, request, context):  # noqa: N802, ANN001
        return await self._breakdown(request, context, "region")

    async def GetLinkContinents(self, request, context):  # noqa: N802, ANN001
        return await self._breakdown(request, context, "continent")

    async def GetLinkDevices(self, request, context):  # noqa: N802, ANN001
        return await self._devices(request, context)

    async def GetLinkReferrers(self, request, context):  # noqa: N802, ANN001
        return await self._breakdown(request, context, "referrer")

    async def GetLinkTriggers(self, request, context):  # noqa: N802, ANN001
        return await self._breakdown(request, context, "trigger")

    async def GetLinkRules(self, request, context):  # noqa: N802, ANN001
        ex, ctx = await self._open(request, context)
        return await drilldowns.rules(ex, self.deps.pg, ctx, request.link_id)

    async def GetLinkRuleConditions(self, request, context):  # noqa: N802, ANN001
        ex, ctx = await self._open(request, context)
        return await drilldowns.rule_conditions(
            ex, self.deps.pg, ctx, request.link_id, request.rule_id
        )

    async def GetLinkTrafficFlow(self, request, context):  # noqa: N802, ANN001
        ex, ctx = await self._open(request, context)
        link = await require_link(self.deps.pg, ctx.workspace_id, request.link_id)
        return await drilldowns.traffic_flow(ex, ctx, link)

    async def GetLinkClickPaths(self, request, context):  # noqa: N802, ANN001
        ex, ctx = await self._open(request, context)
        minutes = params.optional(request, "session_minutes")
        return await drilldowns.click_paths(ex, self.deps.pg, ctx, request.link_id, minutes)

    # Unified overview and conversions.
    async def GetOverview(self, request, context):  # noqa: N802, ANN001
        return await presets.overview(*await self._open(request, context))

    async def GetConversionDetails(self, request, context):  # noqa: N802, ANN001
        ex, ctx = await self._open(request, context)
        units = {code: cur.minor_units for code, cur in (await self.deps.fx.currencies()).items()}
        return await conversions.details(ex, ctx, request.cursor, units)

    async def GetLeads(self, request, context):  # noqa: N802, ANN001
        return await presets.overview(*await self._open(request, context))

    async def GetLeadsTimeseries(self, request, context):  # noqa: N802, ANN001
        return await presets.timeseries(*await self._open(request, context))

    async def GetLeadsBreakdown(self, request, context):  # noqa: N802, ANN001
        dimension = breakdowns.dimension_param(request.dimension)
        return await self._breakdown(request, context, dimension, rank_by="leads")

    async def GetSales(self, request, context):  # noqa: N802, ANN001
        return await presets.overview(*await self._open(request, context))

    async def GetSalesTimeseries(self, request, context):  # noqa: N802, ANN001
        return await presets.timeseries(*await self._open(request, context))

    async def GetSalesBreakdown(self, request, context):  # noqa: N802, ANN001
        dimension = breakdowns.dimension_param(request.dimension)
        return await self._breakdown(request, context, dimension, rank_by="revenue")

    async def GetComposite(self, request, context):  # noqa: N802, ANN001
        ex, ctx = await self._open(request, context)
        if not request.dimension:
            points = await presets.points(ex, ctx)
            return pb.query_pb2.CompositeResponse(points=points, meta=ctx.meta(ex.sources))
        dimension = breakdowns.dimension_param(request.dimension)
        rows = await breakdowns.breakdown(ex, ctx, dimension)
        return pb.query_pb2.CompositeResponse(
            rows=rows.rows, dimension=dimension, meta=ctx.meta(ex.sources)
        )

    async def GetFunnel(self, request, context):  # noqa: N802, ANN001
        return await conversions.funnel(*await self._open(request, context))

    # Embeds: the widget authenticates by its signed token; tokens are managed by scope.
    async def GetEmbed(self, request, context):  # noqa: N802, ANN001
        grant = await self._embeds.grant(request.token)
        return await embed.widget(self._executor(context), self.deps, grant, request)

    async def CreateEmbedToken(self, request, context):  # noqa: N802, ANN001
        caller = principal.current()
        made = await embed_tokens.create(
            self.deps.pg,
            self._signer,
            workspace_id=caller.workspace_id,
            actor=caller.actor,
            link_id=params.optional(request, "link_id"),
            days=params.optional(request, "days"),
            ttl_seconds=params.optional(request, "ttl_seconds"),
        )
        return embed_tokens.to_message(made)

    async def ListEmbedTokens(self, request, context):  # noqa: N802, ANN001
        found = await embed_tokens.list_tokens(
            self.deps.pg, principal.current().workspace_id, request.include_inactive
        )
        return pb.query_pb2.ListEmbedTokensResponse(
            tokens=[embed_tokens.to_message(t) for t in found]
        )

    async def RevokeEmbedToken(self, request, context):  # noqa: N802, ANN001
        caller = principal.current()
        revoked = await embed_tokens.revoke(
            self.deps.pg, request.id, actor=caller.actor, workspace_id=caller.workspace_id
        )
        return embed_tokens.to_message(revoked)

    async def GetRawEvents(self, request, context):  # noqa: N802, ANN001
        return await raw.raw_events(self.deps.ch, self.deps.pg, principal.current(), request)


def register(server: grpc.aio.Server, deps: Deps) -> str:
    """Add the servicer to server; returns the service's full name."""
    pb.query_pb2_grpc.add_QueryServiceServicer_to_server(QueryServicer(deps), server)
    return "linkpulse.v1.QueryService"
