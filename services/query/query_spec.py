"""A QueryRequest of the query API read into a checked QuerySpec: metrics, dimensions, the filter
tree, sort keys and page; every refusal a 400 naming the field (`dimensions[1]`,
`filters.and[0].op`, `orderBy[0].field`) or the plan's 403."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from services import cursor, errors, field_rules, protos
from services.auth.principal import Principal
from services.query import filter_tree
from services.query.filter_tree import Node
from services.timerange import GRANULARITIES

# metric -> the event kinds it is computed from.
METRICS = {
    "clicks": ("clicks",),
    "visitors": ("clicks",),
    "leads": ("leads",),
    "sales": ("sales",),
    "revenue": ("sales",),
    "clickToLead": ("clicks", "leads"),
    "leadToSale": ("leads", "sales"),
    "clickToSale": ("clicks", "sales"),
}
DIMENSIONS = (
    "country", "region", "city", "continent", "device", "browser", "os", "referrer", "trigger",
    "link", "campaign", "folder", "tag", "rule",
)  # fmt: skip
TIME = "time"
# Dimensions a plan feature gates (as the device routes are gated).
FEATURES = {"device": "device_analytics", "browser": "device_analytics", "os": "device_analytics"}
CLICKS_ONLY = ("rule",)
COMPARE = "previous_period"
DEFAULT_LIMIT = 100
MAX_LIMIT = field_rules.maximum(protos.analytics_query_pb2.QueryRequest.DESCRIPTOR, "limit")


@dataclass(frozen=True)
class QuerySpec:
    """What a query asks for, checked."""

    metrics: tuple[str, ...]
    # Output names in order; "time" for the time dimension.
    dimensions: tuple[str, ...]
    granularity: str  # "" without a time dimension
    tree: Node | None
    # (field, descending) sort keys, the default ones when none were given.
    order: tuple[tuple[str, bool], ...]
    limit: int
    offset: int
    compare: bool
    fingerprint: str

    @property
    def kinds(self) -> tuple[str, ...]:
        """The event kinds the metrics need, in the engine's order."""
        needed = {kind for m in self.metrics for kind in METRICS[m]}
        return tuple(k for k in ("clicks", "leads", "sales") if k in needed)


def _metrics(request: protos.analytics_query_pb2.QueryRequest) -> tuple[str, ...]:
    if not request.metrics:
        raise errors.invalid_argument(
            "metrics", f"metrics must list at least one of {', '.join(METRICS)}"
        )
    for i, name in enumerate(request.metrics):
        if name not in METRICS:
            raise errors.invalid_argument(
                f"metrics[{i}]", f"metrics[{i}] must be one of {', '.join(METRICS)}"
            )
        if name in request.metrics[:i]:
            raise errors.invalid_argument(f"metrics[{i}]", f"metrics[{i}] ({name}) is given twice")
    return tuple(request.metrics)


def _dimensions(
    request: protos.analytics_query_pb2.QueryRequest, principal: Principal
) -> tuple[tuple[str, ...], str]:
    names: list[str] = []
    granularity = ""
    for i, raw in enumerate(request.dimensions):
        where = f"dimensions[{i}]"
        name = raw
        if raw.startswith(f"{TIME}:"):
            name, granularity_asked = TIME, raw.split(":", 1)[1]
            if granularity:
                raise errors.invalid_argument(where, f"{where}: only one time dimension is allowed")
            if granularity_asked not in GRANULARITIES:
                raise errors.invalid_argument(
                    where, f"{where} must be time:{'|'.join(GRANULARITIES)} for a time dimension"
                )
            granularity = granularity_asked
        elif raw not in DIMENSIONS:
            raise errors.invalid_argument(
                where,
                f"{where} must be one of {', '.join(DIMENSIONS)} or time:{'|'.join(GRANULARITIES)}",
            )
        if name in names:
            raise errors.invalid_argument(where, f"{where} ({raw}) is given twice")
        feature = FEATURES.get(name)
        if feature and feature not in principal.features:
            raise errors.permission_denied(
                "feature_not_enabled",
                f"'{feature}' is not enabled for this workspace's plan ({principal.plan})"
                f" (dimension {name})",
            )
        names.append(name)
    return tuple(names), granularity


def _clicks_only(metrics: tuple[str, ...], field: str, what: str) -> None:
    others = [m for m in metrics if METRICS[m] != ("clicks",)]
    if others:
        raise errors.invalid_argument(
            field,
            f"{field}: {what} is known for clicks only, not with the metrics {', '.join(others)}",
        )


def _order(
    request: protos.analytics_query_pb2.QueryRequest,
    metrics: tuple[str, ...],
    dimensions: tuple[str, ...],
) -> tuple[tuple[str, bool], ...]:
    if not request.order_by:
        return ((TIME, False),) if TIME in dimensions else ((metrics[0], True),)
    found = []
    for i, key in enumerate(request.order_by):
        where = f"orderBy[{i}]"
        if key.field not in metrics and key.field not in dimensions:
            raise errors.invalid_argument(
                f"{where}.field",
                f"{where}.field must be one of the requested metrics or dimensions",
            )
        direction = key.direction.lower() or ("desc" if key.field in metrics else "asc")
        if direction not in ("asc", "desc"):
            raise errors.invalid_argument(
                f"{where}.direction", f"{where}.direction must be asc or desc"
            )
        found.append((key.field, direction == "desc"))
    return tuple(found)


def fingerprint(request: protos.analytics_query_pb2.QueryRequest) -> str:
    """What a cursor is bound to: the request without its page (cursor and limit)."""
    copy = protos.analytics_query_pb2.QueryRequest()
    copy.CopyFrom(request)
    copy.ClearField("cursor")
    copy.ClearField("limit")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()[:16]


def _offset(request: protos.analytics_query_pb2.QueryRequest, print_: str) -> int:
    position = cursor.decode(request.cursor)
    if position is None:
        return 0
    if len(position) != 2 or not isinstance(position[0], int) or position[0] < 0:
        raise errors.invalid_argument("cursor", "cursor is not a cursor this API returned")
    if position[1] != print_:
        raise errors.invalid_argument("cursor", "cursor belongs to a different query")
    return position[0]


def read(request: protos.analytics_query_pb2.QueryRequest, principal: Principal) -> QuerySpec:
    """The checked spec of request for principal (400 naming the field, 403 for the plan)."""
    metrics = _metrics(request)
    dimensions, granularity = _dimensions(request, principal)
    for i, name in enumerate(request.dimensions):
        if name in CLICKS_ONLY:
            _clicks_only(metrics, f"dimensions[{i}]", f"the {name} dimension")
    tree = filter_tree.parse(request.filters) if request.HasField("filters") else None
    if tree is not None:
        for c in filter_tree.conditions(tree):
            if c.dimension in CLICKS_ONLY:
                _clicks_only(metrics, f"{c.path}.dimension", f"the {c.dimension} dimension")
    if request.compare not in ("", COMPARE):
        raise errors.invalid_argument("compare", f"compare must be {COMPARE}")
    limit = request.limit if request.HasField("limit") else DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise errors.invalid_argument("limit", f"limit must be between 1 and {MAX_LIMIT}")
    print_ = fingerprint(request)
    return QuerySpec(
        metrics=metrics,
        dimensions=dimensions,
        granularity=granularity,
        tree=tree,
        order=_order(request, metrics, dimensions),
        limit=limit,
        offset=_offset(request, print_),
        compare=request.compare == COMPARE,
        fingerprint=print_,
    )
