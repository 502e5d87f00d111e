"""What an export holds: its dataset, format and columns, and the resolved query behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import grpc
from google.protobuf import json_format

from services import errors, protos, timerange
from services.auth.principal import Principal
from services.export.sql import ExportQuery
from services.query import breakdowns, params, presets, query_api
from services.query.executor import Executor
from services.query.listings import LIST_COLUMNS
from services.query.params import QueryContext
from services.query.predicates import DimensionFilter
from services.stores.clickhouse import ClickHouse
from services.stores.deps import Deps

RAW_DATASETS = ("clicks", "leads", "sales")
AGGREGATED_COLUMNS = {
    "timeseries": ("time", "clicks", "unique_visitors", "leads", "sales", "revenue"),
    "breakdown": (
        "key", "label", "clicks", "unique_visitors", "leads", "sales", "revenue", "share",
    ),
}  # fmt: skip
# The query API's answer: its columns are the query's own (query_api.columns).
QUERY_DATASET = "query"
DATASETS = (*RAW_DATASETS, *AGGREGATED_COLUMNS, QUERY_DATASET)
FORMATS = ("csv", "ndjson")


def allowed_columns(dataset: str) -> tuple[str, ...]:
    """Every column a dataset may export, in file order."""
    return LIST_COLUMNS[dataset] if dataset in RAW_DATASETS else AGGREGATED_COLUMNS[dataset]


@dataclass(frozen=True)
class ExportSpec:
    """A validated export request resolved for one workspace: stored with its job."""

    dataset: str
    fmt: str
    columns: tuple[str, ...]
    workspace_id: int
    start: datetime
    end: datetime
    previous_start: datetime
    tz: str
    granularity: str
    link_ids: tuple[int, ...] | None
    filters: tuple[DimensionFilter, ...]
    include_bots: bool
    currency: str
    revenue_factors: dict[str, float] = field(default_factory=dict)
    limit: int = params.DEFAULT_LIMIT
    dimension: str = ""
    # dataset=query: the resolved query (query_api.plan_json).
    query: dict[str, Any] | None = None

    @property
    def raw(self) -> bool:
        """True for raw event datasets (streamed by ClickHouse), False for aggregated ones."""
        return self.dataset in RAW_DATASETS

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (the job's `spec`)."""
        return {
            "dataset": self.dataset,
            "fmt": self.fmt,
            "columns": list(self.columns),
            "workspace_id": self.workspace_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "previous_start": self.previous_start.isoformat(),
            "tz": self.tz,
            "granularity": self.granularity,
            "link_ids": None if self.link_ids is None else list(self.link_ids),
            "filters": [[f.dimension, list(f.values), f.exclude] for f in self.filters],
            "include_bots": self.include_bots,
            "currency": self.currency,
            "revenue_factors": self.revenue_factors,
            "limit": self.limit,
            "dimension": self.dimension,
            "query": self.query,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportSpec:
        """The spec stored by to_json."""
        links = data["link_ids"]
        return cls(
            dataset=data["dataset"],
            fmt=data["fmt"],
            columns=tuple(data["columns"]),
            workspace_id=int(data["workspace_id"]),
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            previous_start=datetime.fromisoformat(data["previous_start"]),
            tz=data["tz"],
            granularity=data["granularity"],
            link_ids=None if links is None else tuple(int(i) for i in links),
            filters=tuple(DimensionFilter(d, tuple(v), bool(x)) for d, v, x in data["filters"]),
            include_bots=bool(data["include_bots"]),
            currency=data["currency"],
            revenue_factors={k: float(v) for k, v in data["revenue_factors"].items()},
            limit=int(data["limit"]),
            dimension=data.get("dimension", ""),
            query=data.get("query"),
        )

    def export_query(self) -> ExportQuery:
        """The export query streaming a raw dataset."""
        return ExportQuery(
            kind=self.dataset,
            workspace_id=self.workspace_id,
            start=self.start,
            end=self.end,
            columns=self.columns,
            fmt=self.fmt,
            link_ids=self.link_ids,
            filters=self.filters,
            include_bots=self.include_bots,
        )

    def context(self) -> QueryContext:
        """The presets' QueryContext of an aggregated dataset."""
        window = timerange.Window(
            start=self.start,
            end=self.end,
            previous_start=self.previous_start,
            tz=ZoneInfo(self.tz),
            granularity=self.granularity,
        )
        return QueryContext(
            workspace_id=self.workspace_id,
            window=window,
            link_ids=self.link_ids,
            filters=self.filters,
            include_bots=self.include_bots,
            currency=self.currency,
            revenue_factors=self.revenue_factors,
            limit=self.limit,
            notices=(),
        )


def _choice(value: str, allowed: tuple[str, ...], name: str) -> str:
    chosen = value.strip().lower() or allowed[0]
    if chosen not in allowed:
        raise errors.invalid_argument(name, f"{name} must be one of {', '.join(allowed)}")
    return chosen


def parse_columns(
    dataset: str, raw: str, allowed: tuple[str, ...] | None = None
) -> tuple[str, ...]:
    """The requested columns of dataset (all when empty); 400 naming `columns` if not allowed."""
    allowed = allowed or allowed_columns(dataset)
    if not raw.strip():
        return allowed
    asked = [c.strip() for c in raw.split(",") if c.strip()]
    unknown = [c for c in asked if c not in allowed]
    if unknown:
        raise errors.invalid_argument(
            "columns",
            f"columns {', '.join(unknown)} are not exported for {dataset};"
            f" choose among {', '.join(allowed)}",
        )
    if len(set(asked)) != len(asked):
        raise errors.invalid_argument("columns", "columns must not repeat a column")
    return tuple(asked)


async def resolve_spec(
    deps: Deps, principal: Principal, request: protos.export_pb2.ExportRequest
) -> ExportSpec:
    """Validate an export request against the caller's plan and scope and resolve it."""
    dataset = _choice(request.dataset, DATASETS, "dataset")
    fmt = _choice(request.format, FORMATS, "format")
    if dataset == QUERY_DATASET:
        return await _query_spec(deps, principal, request, fmt)
    if request.query_json:
        raise errors.invalid_argument("queryJson", "queryJson is used only with dataset=query")
    columns = parse_columns(dataset, request.columns)
    ctx = await params.resolve(deps, principal, request.query)
    dimension = ""
    if dataset == "breakdown":
        dimension = breakdowns.dimension_param(request.query.dimension)
    return _spec(
        ctx, dataset, fmt, columns, link_ids=ctx.link_ids, limit=ctx.limit, dimension=dimension
    )


def _spec(
    ctx: params.QueryContext,
    dataset: str,
    fmt: str,
    columns: tuple[str, ...],
    **extra: Any,
) -> ExportSpec:
    """The spec of an export over a resolved query context (extra: the dataset's own fields)."""
    window = ctx.window
    return ExportSpec(
        dataset=dataset,
        fmt=fmt,
        columns=columns,
        workspace_id=ctx.workspace_id,
        start=window.start,
        end=window.end,
        previous_start=window.previous_start,
        tz=window.tz.key,
        granularity=window.granularity,
        filters=ctx.filters,
        include_bots=ctx.include_bots,
        currency=ctx.currency,
        revenue_factors=ctx.revenue_factors,
        **extra,
    )


async def _query_spec(
    deps: Deps, principal: Principal, request: protos.export_pb2.ExportRequest, fmt: str
) -> ExportSpec:
    """The spec of dataset=query: the query API's request in queryJson, resolved."""
    given = [f.json_name for f, _ in request.query.ListFields()]
    if given:
        raise errors.invalid_argument(
            given[0], f"parameter '{given[0]}' is not used with dataset=query (put it in queryJson)"
        )
    if not request.query_json:
        raise errors.invalid_argument("queryJson", "dataset=query needs queryJson")
    message = protos.analytics_query_pb2.QueryRequest()
    try:
        json_format.Parse(request.query_json, message)
    except json_format.ParseError as exc:
        raise errors.invalid_argument(
            "queryJson", f"queryJson is not a query API request: {str(exc).splitlines()[0]}"
        ) from None
    try:
        plan = await query_api.plan(deps, principal, message)
    except errors.ApiError as exc:
        if exc.code != grpc.StatusCode.INVALID_ARGUMENT or not exc.field:
            raise
        field = f"queryJson.{exc.field}"
        raise errors.invalid_argument(field, f"queryJson: {exc.message}") from None
    columns = parse_columns(QUERY_DATASET, request.columns, query_api.columns(plan.spec))
    return _spec(
        plan.ctx, QUERY_DATASET, fmt, columns, link_ids=None, query=query_api.plan_json(plan)
    )


async def aggregated_rows(ch: ClickHouse, spec: ExportSpec) -> list[dict[str, Any]]:
    """The rows of an aggregated dataset, computed by the same presets as its routes."""
    ex, ctx = Executor(ch), spec.context()
    if spec.query is not None:
        found = await query_api.table(ex, query_api.plan_from_json(spec.query, ctx))
    elif spec.dataset == "timeseries":
        points = await presets.points(ex, ctx)
        found = [
            {
                "time": p.time,
                "clicks": p.clicks,
                "unique_visitors": p.unique_visitors,
                "leads": p.leads,
                "sales": p.sales,
                "revenue": p.revenue,
            }
            for p in points
        ]
    else:
        response = await breakdowns.breakdown(ex, ctx, spec.dimension)
        found = [
            {
                "key": r.key,
                "label": r.label,
                "clicks": r.clicks,
                "unique_visitors": r.unique_visitors,
                "leads": r.leads,
                "sales": r.sales,
                "revenue": r.revenue,
                "share": r.share,
            }
            for r in response.rows
        ]
    return [{c: row[c] for c in spec.columns} for row in found]
