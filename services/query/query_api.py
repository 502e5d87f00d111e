"""The query API (`POST /api/analytics/query`): a QuerySpec run on the one engine, each event
kind's groups merged by key, zero-filled over time buckets, compared, sorted and paged."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
from clickhouse_driver import errors as ch_errors
from google.protobuf import struct_pb2

from services import cursor, errors, protos, timerange
from services.auth.principal import Principal
from services.query import buckets, filter_sets, filter_tree, query_spec
from services.query.breakdowns import LINK_GROUPS
from services.query.engine import GROUPINGS, EventQuery, Row
from services.query.executor import Executor
from services.query.filter_tree import AllOf, Condition, Node
from services.query.params import QueryContext
from services.query.predicates import DimensionFilter
from services.query.presets import EMPTY, money, rate
from services.query.query_spec import TIME, QuerySpec
from services.stores.deps import Deps

aq = protos.analytics_query_pb2
# ClickHouse's TIMEOUT_EXCEEDED.
_TIMEOUT_CODE = 159
Key = tuple[Any, ...]
# Names of the ids of the link and rule dimensions (campaigns, folders, tags: LINK_GROUPS).
_NAMES = {
    "link": "SELECT id, domain || '/' || slug FROM links WHERE workspace_id = $1",
    "rule": "SELECT id, name FROM link_rules WHERE workspace_id = $1",
}
_LABELLED = ("link", "rule", *GROUPINGS)


@dataclass(frozen=True)
class Plan:
    """A spec resolved against the caller: the context, how to filter, and the link groups."""

    spec: QuerySpec
    ctx: QueryContext
    predicate: filter_tree.Predicate | None
    groupings: tuple[tuple[str, tuple[tuple[int, int], ...]], ...]
    max_groups: int
    timeout_seconds: int
    # "dimension:id" -> name of the ids the id dimensions show.
    labels: dict[str, str] = field(default_factory=dict)


def simple_filters(tree: Node | None) -> tuple[DimensionFilter, ...] | None:
    """The tree as the routes' filters when it is a conjunction of is / is_not on event columns
    or links (which the daily aggregates can answer too); None when it is more."""
    if tree is None:
        return ()
    found = tree.nodes if isinstance(tree, AllOf) else (tree,)
    out = []
    for node in found:
        if not isinstance(node, Condition) or node.op not in ("is", "is_not"):
            return None
        if node.dimension in filter_tree.COLUMNS:
            values: tuple[object, ...] = node.values
        elif node.dimension == "link":
            values = node.ids()
        else:
            return None
        out.append(DimensionFilter(node.dimension, values, node.op == "is_not"))
    return tuple(out)


async def plan(deps: Deps, principal: Principal, request: Any, now: datetime | None = None) -> Plan:
    """Check request and resolve it (window, currency, filter ids, link groups)."""
    spec = query_spec.read(request, principal)
    try:
        window = timerange.resolve(
            days=request.days if request.HasField("days") else None,
            start=request.start,
            end=request.end,
            timezone_name=request.timezone,
            granularity=spec.granularity,
            default_timezone=principal.timezone,
            plan_max_days=principal.max_days,
            max_days=deps.settings.max_days,
            now=now or datetime.now(UTC),
        )
    except errors.ApiError as exc:
        if exc.field != "granularity":
            raise
        at = next(i for i, d in enumerate(request.dimensions) if d.startswith(f"{TIME}:"))
        raise errors.invalid_argument(f"dimensions[{at}]", exc.message) from None
    currency, currency_notices = await deps.fx.choose(request.currency, principal.currency)
    filters = simple_filters(spec.tree)
    predicate = None
    if filters is None and spec.tree is not None:
        id_sets = await filter_sets.resolve(deps.pg, principal.workspace_id, spec.tree)
        predicate = filter_tree.compile_tree(spec.tree, id_sets)
    groupings = []
    labels: dict[str, str] = {}
    for name in GROUPINGS:
        if name in spec.dimensions:
            pairs = await deps.pg.fetch(LINK_GROUPS[name], principal.workspace_id)
            groupings.append((name, tuple((int(r[0]), int(r[1])) for r in pairs)))
            labels.update((f"{name}:{r[1]}", r[2]) for r in pairs)
    for name, sql in _NAMES.items():
        if name in spec.dimensions:
            rows = await deps.pg.fetch(sql, principal.workspace_id)
            labels.update((f"{name}:{r[0]}", r[1]) for r in rows)
    ctx = QueryContext(
        workspace_id=principal.workspace_id,
        window=window,
        link_ids=None,
        filters=filters or (),
        include_bots=request.include_bots,
        currency=currency,
        revenue_factors=await deps.fx.factors(currency),
        limit=spec.limit,
        notices=window.notices + tuple(currency_notices),
    )
    return Plan(
        spec,
        ctx,
        predicate,
        tuple(groupings),
        deps.settings.query_max_groups,
        deps.settings.query_timeout_seconds,
        labels,
    )


def timed_out(exc: ch_errors.ServerException, seconds: int) -> errors.ApiError | None:
    """The 504 of a statement ClickHouse stopped at its time limit; None for other errors."""
    if exc.code != _TIMEOUT_CODE:
        return None
    return errors.ApiError(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "query_timeout",
        f"the query ran longer than {seconds} seconds (QUERY_TIMEOUT_SECONDS): narrow the"
        " range, the filters or the dimensions",
    )


def _too_many(p: Plan) -> errors.ApiError:
    return errors.invalid_argument(
        "dimensions",
        f"the query gives more than {p.max_groups} groups (QUERY_MAX_GROUPS): add filters, use"
        " fewer dimensions, a coarser time dimension or a shorter range",
    )


def _query(p: Plan, kind: str, previous: bool) -> EventQuery:
    window = p.ctx.window
    start, end = (window.previous_start, window.start) if previous else (window.start, window.end)
    return p.ctx.event_query(
        kind,
        start=start,
        end=end,
        group_by=p.spec.dimensions,
        predicate=p.predicate,
        groupings=p.groupings,
        with_visitors="visitors" in p.spec.metrics,
        max_rows=p.max_groups + 1,
        timeout_seconds=p.timeout_seconds,
    )


async def _run(ex: Executor, p: Plan, previous: bool) -> dict[Key, dict[str, Row]]:
    """Each group's row of each kind (a group absent from a kind has no entry for it)."""
    kinds = p.spec.kinds
    try:
        results = await asyncio.gather(*(ex.run(_query(p, k, previous)) for k in kinds))
    except ch_errors.ServerException as exc:
        timeout = timed_out(exc, p.timeout_seconds)
        if timeout is None:
            raise
        raise timeout from None
    merged: dict[Key, dict[str, Row]] = {}
    grouped = bool(p.spec.dimensions)
    for kind, rows in zip(kinds, results, strict=True):
        if len(rows) > p.max_groups:
            raise _too_many(p)
        for row in rows:
            key = (row.key if isinstance(row.key, tuple) else (row.key,)) if grouped else ()
            merged.setdefault(key, {})[kind] = row
    if len(merged) > p.max_groups:
        raise _too_many(p)
    return merged


def _metrics(metrics: Iterable[str], rows: dict[str, Row]) -> dict[str, Any]:
    clicks, leads, sales = (rows.get(k, EMPTY) for k in ("clicks", "leads", "sales"))
    values = {
        "clicks": clicks.events,
        "visitors": clicks.visitors,
        "leads": leads.events,
        "sales": sales.events,
        "revenue": money(sales.revenue),
        "clickToLead": rate(leads.events, clicks.events),
        "leadToSale": rate(sales.events, leads.events),
        "clickToSale": rate(sales.events, clicks.events),
    }
    return {m: values[m] for m in metrics}


def _bucket_keys(p: Plan, previous: bool) -> list[int]:
    window = p.ctx.window
    start, end = (window.previous_start, window.start) if previous else (window.start, window.end)
    return [int(s.timestamp()) for s in buckets.starts(start, end, p.spec.granularity, window.tz)]


def _filled(p: Plan, merged: dict[Key, dict[str, Row]]) -> dict[Key, dict[str, Row]]:
    """Every time bucket of the window for each group seen (the groups as found without time)."""
    dims = p.spec.dimensions
    if TIME not in dims:
        return merged if dims or merged else {(): {}}
    at = dims.index(TIME)
    others = {k[:at] + k[at + 1 :] for k in merged} if len(dims) > 1 else {()}
    bucket_keys = _bucket_keys(p, previous=False)
    if len(others) * len(bucket_keys) > p.max_groups:
        raise _too_many(p)
    out = {}
    for rest in sorted(others, key=_sortable_key):
        for bucket in bucket_keys:
            key = rest[:at] + (bucket,) + rest[at:]
            out[key] = merged.get(key, {})
    return out


def _previous_key(p: Plan) -> dict[int, int]:
    """Each bucket of the window -> the bucket at the same position in the previous period."""
    current, previous = _bucket_keys(p, False), _bucket_keys(p, True)
    return dict(zip(current, previous, strict=False))


def _sortable(value: Any) -> tuple[bool, Any]:
    return (value is not None and value != "" and value != 0, value)


def _sortable_key(key: Key) -> tuple[tuple[bool, Any], ...]:
    return tuple(_sortable(v) for v in key)


def _dimension_value(name: str, value: Any, p: Plan) -> Any:
    """A key as the rows show it: None for unknown / none, ids as numbers, times as labels."""
    if name == TIME:
        tz = p.ctx.window.tz
        return buckets.label(datetime.fromtimestamp(int(value), UTC).astimezone(tz), tz)
    if isinstance(value, str):
        return value or None
    return int(value) or None


def _sorted(p: Plan, rows: list[tuple[Key, dict[str, Any]]]) -> list[tuple[Key, dict[str, Any]]]:
    dims = p.spec.dimensions
    ordered = sorted(rows, key=lambda r: _sortable_key(r[0]))  # ties: dimensions ascending
    for name, descending in reversed(p.spec.order):
        ordered.sort(key=_sort_key(name, dims), reverse=descending)
    return ordered


def _sort_key(name: str, dims: tuple[str, ...]) -> Callable[[tuple[Key, dict[str, Any]]], Any]:
    """The sort key of a dimension (its raw key, unknown first) or of a metric."""
    if name in dims:
        at = dims.index(name)
        return lambda row: _sortable(row[0][at])
    return lambda row: row[1][name]


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    made = struct_pb2.Struct()
    made.update(values)
    return made


async def _ordered(ex: Executor, p: Plan) -> list[tuple[Key, dict[str, Any]]]:
    """Every group's key and metrics, zero-filled over time and sorted."""
    merged = _filled(p, await _run(ex, p, previous=False))
    return _sorted(p, [(key, _metrics(p.spec.metrics, found)) for key, found in merged.items()])


async def _rows(
    ex: Executor, p: Plan, page: list[tuple[Key, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The page's rows as flat objects (with compare, each with `previous`)."""
    spec = p.spec
    before: dict[Key, dict[str, Row]] = {}
    to_previous: dict[int, int] = {}
    if spec.compare and page:
        before = await _run(ex, p, previous=True)
        if TIME in spec.dimensions:
            to_previous = _previous_key(p)
    at = spec.dimensions.index(TIME) if TIME in spec.dimensions else -1
    out = []
    for key, metrics in page:
        values: dict[str, Any] = {
            name: _dimension_value(name, v, p) for name, v in zip(spec.dimensions, key, strict=True)
        }
        values.update(metrics)
        if spec.compare:
            old: Key | None = key
            if at >= 0:
                bucket = to_previous.get(int(key[at]))
                old = None if bucket is None else key[:at] + (bucket,) + key[at + 1 :]
            values["previous"] = _metrics(
                spec.metrics, before.get(old, {}) if old is not None else {}
            )
        out.append(values)
    return out


async def answer(ex: Executor, p: Plan) -> Any:
    """The QueryResponse of a plan: one page of its sorted groups."""
    spec = p.spec
    ordered = await _ordered(ex, p)
    page = await _rows(ex, p, ordered[spec.offset : spec.offset + spec.limit])
    end = spec.offset + spec.limit
    next_cursor = cursor.encode([end, spec.fingerprint]) if end < len(ordered) else None
    meta = _meta(ex, p, len(ordered))
    for row in page:
        for name in _LABELLED:
            key = f"{name}:{row.get(name)}"
            if key in p.labels:
                meta.labels[key] = p.labels[key]
    return aq.QueryResponse(rows=[_struct(r) for r in page], meta=meta, next_cursor=next_cursor)


def columns(spec: QuerySpec) -> tuple[str, ...]:
    """The columns of a plan's rows as a table: dimensions, metrics, previous_<metric>."""
    previous = tuple(f"previous_{m}" for m in spec.metrics) if spec.compare else ()
    return (*spec.dimensions, *spec.metrics, *previous)


async def table(ex: Executor, p: Plan) -> list[dict[str, Any]]:
    """Every row of a plan (no pages), `previous` flattened into previous_<metric> columns."""
    out = []
    for row in await _rows(ex, p, await _ordered(ex, p)):
        previous = row.pop("previous", {})
        row.update({f"previous_{m}": v for m, v in previous.items()})
        out.append(row)
    return out


def _meta(ex: Executor, p: Plan, groups: int) -> Any:
    base = p.ctx.meta(ex.sources, with_previous=p.spec.compare)
    names = aq.QueryMeta.DESCRIPTOR.fields_by_name
    meta = aq.QueryMeta(
        **{
            f.name: getattr(base, f.name)
            for f in base.DESCRIPTOR.fields
            if f.name in names and (not f.has_presence or base.HasField(f.name))
        }
    )
    meta.ClearField("granularity")
    if p.spec.granularity:
        meta.granularity = p.spec.granularity
    meta.metrics.extend(p.spec.metrics)
    meta.dimensions.extend(p.spec.dimensions)
    for name, descending in p.spec.order:
        meta.order_by.add(field=name, direction="desc" if descending else "asc")
    meta.limit = p.spec.limit
    meta.groups = groups
    meta.max_groups = p.max_groups
    meta.timeout_seconds = p.timeout_seconds
    if p.spec.compare:
        meta.compare = query_spec.COMPARE
    return meta


def plan_json(p: Plan) -> dict[str, Any]:
    """What a plan adds to its context, JSON-able (an export job stores it)."""
    spec, predicate = p.spec, p.predicate
    return {
        "metrics": list(spec.metrics),
        "dimensions": list(spec.dimensions),
        "granularity": spec.granularity,
        "order": [[name, descending] for name, descending in spec.order],
        "compare": spec.compare,
        "predicate": None
        if predicate is None
        else {
            "sql": predicate.sql,
            "params": [[k, list(v) if isinstance(v, tuple) else v] for k, v in predicate.params],
            "columns": sorted(predicate.columns),
        },
        "groupings": [[name, [list(pair) for pair in pairs]] for name, pairs in p.groupings],
        "max_groups": p.max_groups,
        "timeout_seconds": p.timeout_seconds,
    }


def plan_from_json(data: dict[str, Any], ctx: QueryContext) -> Plan:
    """The plan stored by plan_json over ctx, for every row at once."""
    found = data["predicate"]
    predicate = None
    if found is not None:
        params = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in found["params"])
        predicate = filter_tree.Predicate(found["sql"], params, frozenset(found["columns"]))
    spec = QuerySpec(
        metrics=tuple(data["metrics"]),
        dimensions=tuple(data["dimensions"]),
        granularity=data["granularity"],
        tree=None,
        order=tuple((name, bool(descending)) for name, descending in data["order"]),
        limit=int(data["max_groups"]),
        offset=0,
        compare=bool(data["compare"]),
        fingerprint="",
    )
    groupings = tuple(
        (name, tuple((int(a), int(b)) for a, b in pairs)) for name, pairs in data["groupings"]
    )
    return Plan(
        spec, ctx, predicate, groupings, int(data["max_groups"]), int(data["timeout_seconds"])
    )


async def query(deps: Deps, ex: Executor, principal: Principal, request: Any) -> Any:
    """Answer one QueryRequest as principal."""
    return await answer(ex, await plan(deps, principal, request))
