"""The shared query parameters of a request, validated and resolved into a QueryContext."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from services import errors, field_rules, protos, timerange
from services.auth.principal import Principal
from services.query import scope
from services.query.engine import EventQuery
from services.query.executor import Sources
from services.query.predicates import FILTERABLE, DimensionFilter
from services.stores.deps import Deps

DEFAULT_LIMIT = 10
MAX_LIMIT = field_rules.maximum(protos.common_pb2.AnalyticsQuery.DESCRIPTOR, "limit")


@dataclass(frozen=True)
class QueryContext:
    """Everything the presets need: whose data, which window, which links, which currency."""

    workspace_id: int
    window: timerange.Window
    link_ids: tuple[int, ...] | None
    filters: tuple[DimensionFilter, ...]
    include_bots: bool
    currency: str
    revenue_factors: dict[str, float]
    limit: int
    notices: tuple[str, ...]

    def event_query(self, kind: str, **overrides: Any) -> EventQuery:
        """An EventQuery of kind over this context; overrides set group_by, compare_start, …"""
        base = EventQuery(
            kind=kind,
            workspace_id=self.workspace_id,
            start=self.window.start,
            end=self.window.end,
            granularity=self.window.granularity,
            tz=self.window.tz.key,
            link_ids=self.link_ids,
            filters=self.filters,
            include_bots=self.include_bots,
            revenue_factors=self.revenue_factors,
        )
        return replace(base, **overrides)

    def meta(self, sources: Sources, with_previous: bool = False) -> protos.common_pb2.ResponseMeta:
        """ResponseMeta describing this context and where the answer came from."""
        tz = self.window.tz
        meta = protos.common_pb2.ResponseMeta(
            start=self.window.start.astimezone(tz).isoformat(),
            end=self.window.end.astimezone(tz).isoformat(),
            timezone=tz.key,
            granularity=self.window.granularity,
            currency=self.currency,
            source=sources.name,
            notices=[*self.notices, *sources.notices],
        )
        if sources.fallback_as_of is not None:
            meta.data_as_of = sources.fallback_as_of.astimezone(tz).isoformat()
        if with_previous:
            meta.previous_start = self.window.previous_start.astimezone(tz).isoformat()
            meta.previous_end = meta.start
        return meta


def dimension_filters(q: protos.common_pb2.AnalyticsQuery) -> tuple[DimensionFilter, ...]:
    """Include lists `a,b` and exclude lists `-a,b` of the filterable dimensions."""
    found = []
    for name in FILTERABLE:
        raw = getattr(q, name).strip()
        if not raw:
            continue
        exclude = raw.startswith("-")
        values = tuple(v.strip() for v in raw.lstrip("-").split(",") if v.strip())
        if not values:
            raise errors.invalid_argument(name, f"{name} must list at least one value")
        found.append(DimensionFilter(name, values, exclude))
    return tuple(found)


def optional(msg: Any, name: str) -> Any:
    """The value of an optional proto field, or None when it was not given."""
    return getattr(msg, name) if msg.HasField(name) else None


async def resolve(
    deps: Deps,
    principal: Principal,
    q: protos.common_pb2.AnalyticsQuery,
    now: datetime | None = None,
) -> QueryContext:
    """Validate q against the caller's plan and workspace and resolve its scope and currency."""
    window = timerange.resolve(
        days=optional(q, "days"),
        start=q.start,
        end=q.end,
        timezone_name=q.timezone,
        granularity=q.granularity,
        default_timezone=principal.timezone,
        plan_max_days=principal.max_days,
        max_days=deps.settings.max_days,
        now=now or datetime.now(UTC),
    )
    limit = optional(q, "limit")
    if limit is None:
        limit = DEFAULT_LIMIT
    elif not 1 <= limit <= MAX_LIMIT:
        raise errors.invalid_argument("limit", f"limit must be between 1 and {MAX_LIMIT}")
    links = await scope.link_ids(
        deps.pg,
        principal.workspace_id,
        link_id=optional(q, "link_id"),
        campaign_id=optional(q, "campaign_id"),
        folder_id=optional(q, "folder_id"),
        tag_id=optional(q, "tag_id"),
    )
    currency, currency_notices = await deps.fx.choose(q.currency, principal.currency)
    return QueryContext(
        workspace_id=principal.workspace_id,
        window=window,
        link_ids=links,
        filters=dimension_filters(q),
        include_bots=q.include_bots,
        currency=currency,
        revenue_factors=await deps.fx.factors(currency),
        limit=limit,
        notices=window.notices + tuple(currency_notices),
    )
