"""Batch queries: items bound to the Analytics API's read routes, run as the caller."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

import asyncpg
import grpc
import orjson
from google.protobuf import json_format

from services import errors, protos
from services.auth.authorize import authorize
from services.auth.principal import Principal
from services.contract.compiled import contract
from services.contract.jsonify import message_to_dict
from services.contract.router import BoundRequest, ReadRouter
from services.export.jobtable import JobTable, request_key
from services.query.handlers import HANDLERS, Call, QueryDeps
from services.stores.deps import Deps

# Items of one batch run at once (each may run several ClickHouse queries itself).
CONCURRENCY = 4
BATCHES = JobTable(
    "batch_jobs",
    "id, workspace_id, actor, principal, items, results, status, error, attempt, created_at,"
    " finished_at",
    id_prefix="bat",
    noun="batch",
)


def router() -> ReadRouter:
    """The router over the Analytics API's read routes (QueryService GET bindings and the
    query API's POST)."""
    return contract().read_router("query")


def validate(
    request: protos.export_pb2.BatchRequest, routes: ReadRouter, max_items: int
) -> list[dict[str, Any]]:
    """The batch's items as stored; 400 naming the item and parameter at fault."""
    if not request.queries:
        raise errors.invalid_argument("queries", "queries must list at least one query")
    if len(request.queries) > max_items:
        raise errors.invalid_argument(
            "queries", f"a batch holds at most {max_items} queries ({len(request.queries)} given)"
        )
    items = []
    for i, query in enumerate(request.queries):
        where = f"queries[{i}]"
        if not query.route.strip():
            raise errors.invalid_argument(f"{where}.route", f"{where}.route is required")
        body = json_format.MessageToDict(query.body) if query.HasField("body") else None
        try:
            routes.bind(query.route, dict(query.params), _body_bytes(body))
        except errors.ApiError as exc:
            if exc.code == grpc.StatusCode.NOT_FOUND:
                raise errors.invalid_argument(
                    f"{where}.route", f"{where}.route: no analytics read route {query.route}"
                ) from None
            part = f"{where}.body" if body is not None else f"{where}.params"
            field = f"{part}.{exc.field}" if exc.field else (part if body is not None else where)
            raise errors.invalid_argument(field, f"{where}: {exc.message}") from None
        item = {"id": query.id or str(i), "route": query.route, "params": dict(query.params)}
        if body is not None:
            item["body"] = body
        items.append(item)
    return items


def _body_bytes(body: dict[str, Any] | None) -> bytes | None:
    """An item's body as the route's binder reads it."""
    return None if body is None else orjson.dumps(body)


def principal_json(principal: Principal) -> str:
    """The caller as stored with its batch."""
    data = asdict(principal)
    for name in ("scopes", "features"):
        data[name] = sorted(data[name])
    return orjson.dumps(data).decode()


def principal_from_json(raw: str | dict[str, Any]) -> Principal:
    """The caller stored by principal_json."""
    data = orjson.loads(raw) if isinstance(raw, str) else dict(raw)
    data["scopes"] = frozenset(data["scopes"])
    data["features"] = frozenset(data["features"])
    data["workspace_ids"] = tuple(data["workspace_ids"])
    return Principal(**data)


async def create(
    pg: asyncpg.Pool, principal: Principal, items: list[dict[str, Any]]
) -> tuple[asyncpg.Record, bool]:
    """A queued batch, or the identical one still queued or running; (job, created)."""
    return await BATCHES.create(
        pg,
        workspace_id=principal.workspace_id,
        actor=principal.actor,
        key=request_key(principal.actor, items),
        values={"principal": principal_json(principal), "items": orjson.dumps(items).decode()},
    )


async def get(pg: asyncpg.Pool, workspace_id: int, batch_id: str) -> asyncpg.Record:
    """The workspace's batch; NOT_FOUND for an unknown id or another workspace's batch."""
    return await BATCHES.get(pg, workspace_id, batch_id)


def _answered_anyway() -> None:
    """A batch's results are stored as they are: an answer from the fallback needs no mark."""


async def run_item(query: QueryDeps, bound: BoundRequest, principal: Principal) -> dict[str, Any]:
    """One item's data as its route answers it (the route's scope and feature enforced)."""
    authorize(principal, bound.route.options)
    handler = HANDLERS[bound.route.rpc]
    response = await handler(query, Call(principal, _answered_anyway), bound.message)
    return message_to_dict(response)


async def run_items(
    deps: Deps, principal: Principal, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every item's result or error, in order."""
    routes = router()
    query = QueryDeps.of(deps)
    slots = asyncio.Semaphore(CONCURRENCY)
    pause = deps.settings.batch_item_pause_ms / 1000

    async def one(item: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {"id": item["id"], "route": item["route"]}
        async with slots:
            try:
                bound = routes.bind(item["route"], item["params"], _body_bytes(item.get("body")))
                result.update(ok=True, data=await run_item(query, bound, principal))
                if pause:
                    await asyncio.sleep(pause)
            except Exception as exc:
                error = errors.to_api_error(exc)
                if error is None or error.code == grpc.StatusCode.UNAVAILABLE:
                    raise  # a bug fails the batch; a store outage retries it
                detail = {"code": error.reason, "message": error.message}
                if error.field:
                    detail["field"] = error.field
                result.update(ok=False, error=detail)
        return result

    return list(await asyncio.gather(*(one(item) for item in items)))


async def beat(pg: asyncpg.Pool, batch_id: str, attempt: int) -> bool:
    """Say the attempt's run is alive; False if the attempt no longer owns the batch."""
    return await BATCHES.beat(pg, batch_id, attempt)


async def stalled(pg: asyncpg.Pool, seconds: float) -> list[str]:
    """Running batches whose worker has not reported for seconds (it died)."""
    return await BATCHES.stalled(pg, seconds)


async def claim(pg: asyncpg.Pool, batch_id: str) -> asyncpg.Record | None:
    """Start an attempt of a queued or running batch; None when it has finished."""
    return await BATCHES.claim(pg, batch_id)


async def finish(
    pg: asyncpg.Pool, batch_id: str, attempt: int, results: list[dict[str, Any]]
) -> None:
    """Store the results of the attempt that owns the batch."""
    await BATCHES.finish(
        pg, batch_id, attempt, "status = 'succeeded', results = $3", orjson.dumps(results).decode()
    )


async def fail(pg: asyncpg.Pool, batch_id: str, attempt: int, error: str) -> None:
    """Mark the attempt's batch failed."""
    await BATCHES.fail(pg, batch_id, attempt, error)
