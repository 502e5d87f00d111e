"""`make bench`'s cluster section (BENCH_CLUSTER=1): the same data on the single-node server and on
the dev ClickHouse cluster, the same routes timed on both in the same rounds (gateway uncached and
the engine's statements straight on ClickHouse), the ingest paths through the cluster's
Distributed tables, and, with BENCH_TENANTS, the whale's routes with the multi-tenant data sharded
by workspace and by event.

BENCH_ONLY=cluster runs just this section (route names in BENCH_ONLY narrow it).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from services.admin.credentials import create_api_key, revoke_api_key
from services.auth.resolver import TokenResolver
from services.config import Settings
from services.money import FxTable
from services.stores.clickhouse import ClickHouse, ClickHouseTarget
from services.stores.cluster import Cluster
from services.stores.deps import Deps
from services.stores.redisclient import create_redis
from tests.bench import answers, cluster_data, engine_sql, ingest, system, tenant_data, tenants
from tests.bench.cluster_data import ClusterCopy
from tests.bench.dataset import Dataset, top_link
from tests.bench.engine_sql import EnginePlan
from tests.bench.ingest import IngestResult
from tests.bench.options import BenchOptions, other_system_env
from tests.bench.progress import say
from tests.bench.routes import ROUTES, Route
from tests.bench.runner import NO_CACHE
from tests.bench.timing import Samples

SECTION = "cluster"
CLUSTER_DATABASE = "linkpulse_bench_cluster"
# The multi-tenant data once per sharding key (the key only places rows as they are inserted).
SPREAD_DATABASES = {
    "workspace": "linkpulse_bench_cluster_workspace",
    "event": "linkpulse_bench_cluster_event",
}
# Ports (added to BENCH_PORT_BASE) and Redis databases of the cluster systems, beside the others.
SPREAD_PORTS = {"workspace": 300, "event": 400}
SPREAD_REDIS = {"workspace": 11, "event": 10}
SINGLE = "single node"
NAMES = ("query", "gateway")
INGEST_NAMES = ("live", "flusher", "gateway")


@dataclass(frozen=True)
class Side:
    """One system a comparison times: its name and the environment of its processes."""

    name: str
    env: dict[str, str]


@dataclass
class Timed:
    """One route on one side: gateway and direct samples, statements, answer against the first
    side's."""

    statements: int
    gateway: Samples = field(default_factory=Samples)
    direct: Samples = field(default_factory=Samples)
    mismatches: list[str] = field(default_factory=list)
    visitor_error: float = 0.0


@dataclass
class Compared:
    """One route timed on every side."""

    route: Route
    by_side: dict[str, Timed]

    def ratio(self, side: str, base: str, direct: bool = False) -> float:
        """side's p50 over base's p50 (gateway, or direct ClickHouse)."""
        over, under = self.by_side[side], self.by_side[base]
        a, b = (over.direct, under.direct) if direct else (over.gateway, under.gateway)
        return a.p50 / b.p50 if b.p50 else float("nan")


@dataclass(frozen=True)
class WhaleSpread:
    """The whale's routes on the single node and on the cluster under each sharding key."""

    dataset: tenant_data.TenantDataset
    copies: dict[str, ClusterCopy]
    # The whale's clicks on each shard, by sharding key.
    shards: dict[str, list[int]]
    routes: list[Compared]
    repeat: int


@dataclass(frozen=True)
class ClusterBench:
    """Everything the section measured."""

    copy: ClusterCopy
    # Events of the demo workspace (the copy also holds the earlier sections' ingest workspaces).
    demo: dict[str, int]
    version: str
    routes: list[Compared]
    ingest: list[IngestResult]
    spread: WhaleSpread | None
    load: tuple[tuple[float, float, float], tuple[float, float, float]]
    repeat: int
    warmup: int

    def mismatches(self) -> list[str]:
        """Each answer of a cluster that differs from the single node's (its first difference)."""
        compared = self.routes + (self.spread.routes if self.spread else [])
        return [
            f"{c.route.name} ({side}): {timed.mismatches[0]}"
            for c in compared
            for side, timed in c.by_side.items()
            if timed.mismatches
        ]


def wanted(options: BenchOptions) -> bool:
    """True when BENCH_CLUSTER is set and BENCH_ONLY does not leave the section out."""
    if not options.cluster:
        return False
    named = set(options.only) - {r.name for r in ROUTES}
    return not named or SECTION in named


@dataclass(frozen=True)
class _Open:
    name: str
    http: httpx.AsyncClient
    ch: ClickHouse
    deps: Deps


async def _get(http: httpx.AsyncClient, path: str, query: dict[str, Any]) -> httpx.Response:
    response = await http.get(path, params=query, headers=NO_CACHE)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}: {response.text[:300]}")
    return response


async def _route(
    route: Route, opened: list[_Open], caller: Any, link_id: int, warmup: int, repeat: int
) -> Compared:
    """Check every side's answer against the first side's, then time them round by round."""
    path = route.url_path(link_id)
    plans: dict[str, EnginePlan] = {}
    got = {}
    for side in opened:
        plans[side.name] = await engine_sql.capture(side.deps, caller, route, link_id)
        response = await _get(side.http, path, route.query)
        got[side.name] = answers.from_gateway(route.shape, response.json()["data"])
    base = opened[0].name
    by_side = {side.name: Timed(plans[side.name].statements) for side in opened}
    for side in opened[1:]:
        timed = by_side[side.name]
        timed.mismatches = answers.differences(got[side.name], got[base], limit=3, expected=base)
        timed.visitor_error = answers.worst_visitor_error(got[side.name], got[base])
        if timed.mismatches:
            say(f"cluster: {route.name} ({side.name}): ANSWER MISMATCH {timed.mismatches}")
    # Interleaved: drift in the machine's load weighs on every side alike.
    for round_ in range(warmup + repeat):
        keep = round_ >= warmup
        for side in opened:
            call = functools.partial(_get, side.http, path, route.query)
            await by_side[side.name].gateway.time(call, keep=keep)
        for side in opened:
            replay = functools.partial(engine_sql.run, side.ch, plans[side.name])
            await by_side[side.name].direct.time(replay, keep=keep)
    result = Compared(route, by_side)
    say(f"cluster: {route.name}: p50 gateway " + ", ".join(
        f"{name} {t.gateway.p50:.1f}" for name, t in by_side.items()) + " ms")  # fmt: skip
    return result


async def compare(
    sides: list[Side], database_url: str, workspace_id: int, options: BenchOptions, repeat: int
) -> list[Compared]:
    """Start every side's query service and gateway, time the routes of the workspace on all."""
    routes = [r for r in ROUTES if r.name in options.only] or list(ROUTES)
    async with contextlib.AsyncExitStack() as stack:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
        stack.push_async_callback(pool.close)
        key = await create_api_key(pool, workspace_id, ["analytics:read"], name="bench cluster")
        stack.push_async_callback(revoke_api_key, pool, key["id"])
        caller = await TokenResolver(pool).resolve(key["key"])
        opened = []
        for side in sides:
            settings = system.settings_of(side.env)
            ch = ClickHouse.from_settings(settings, pool_size=4)
            stack.callback(ch.close)
            redis = create_redis(settings.redis_url)
            stack.push_async_callback(redis.aclose)
            url = stack.enter_context(system.running(settings, side.env, NAMES))
            http = await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=url, headers={"Authorization": f"Bearer {key['key']}"}, timeout=120
                )
            )
            opened.append(
                _Open(side.name, http, ch, Deps(settings, pool, ch, redis, FxTable(pool)))
            )
        link_id = await top_link(opened[0].ch, workspace_id) or 0
        return [
            await _route(route, opened, caller, link_id, options.warmup, repeat) for route in routes
        ]


def _cluster_env(
    env: Mapping[str, str], database: str, copy: ClusterCopy, options: BenchOptions
) -> dict[str, str]:
    """A system on PostgreSQL database `database` and the cluster copy (ports and Redis of the
    copy's sharding key)."""
    base = other_system_env(
        env,
        database,
        SPREAD_REDIS[copy.sharding],
        options.port_base + SPREAD_PORTS[copy.sharding],
        f"bench-cluster-{copy.sharding}",
    )
    return {**base, **copy.env()}


async def _ingest(env: dict[str, str]) -> list[IngestResult]:
    """The live section's ingest paths with the live service and flusher on the cluster."""
    settings = system.settings_of(env)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
    ch = ClickHouse.from_settings(settings)
    try:
        with system.running(settings, env, INGEST_NAMES) as gateway_url:
            return await ingest.measure(
                settings,
                pool,
                ch,
                gateway_url,
                events=_env_int("BENCH_INGEST_EVENTS", 200_000),
                rest_events=_env_int("BENCH_REST_EVENTS", 15_000),
            )
    finally:
        ch.close()
        await pool.close()


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").replace("_", "")
    return int(raw) if raw else default


async def _whale_shards(copy: ClusterCopy, workspace_id: int) -> list[int]:
    """The whale's clicks on each shard of the copy."""
    target = ClickHouseTarget.from_url(copy.layout.url(), copy.layout.name)
    topology = await Cluster.open(target)
    try:
        counts = []
        for group in topology.topology.writer_groups():
            rows = await topology.client(group[0]).fetch(
                "SELECT count() FROM clicks WHERE workspace_id = %(ws)s", {"ws": workspace_id}
            )
            counts.append(int(rows[0][0]))
        return counts
    finally:
        topology.close()


async def _spread(env: Mapping[str, str], options: BenchOptions) -> WhaleSpread:
    """The multi-tenant data copied once per sharding key; the whale's routes on all three."""
    data = await tenants.dataset(env, options)
    tenants_env, _ = tenants.environments(env, options)
    settings = system.settings_of(tenants_env)
    whale = data.tenants[0].workspace_id
    copies, shards = {}, {}
    sides = [Side(SINGLE, tenants_env)]
    for sharding, database in SPREAD_DATABASES.items():
        layout = cluster_data.layout(settings, database)
        copies[sharding] = await cluster_data.copy(
            layout, sharding, settings.database_url, settings.clickhouse_url
        )
        shards[sharding] = await _whale_shards(copies[sharding], whale)
        say(f"cluster: the whale's clicks per shard, {sharding} sharding: {shards[sharding]}")
        cluster_env = _cluster_env(env, tenant_data.TENANTS_DATABASE, copies[sharding], options)
        sides.append(Side(f"cluster, {sharding}", cluster_env))
    # The multi-tenant section's samples per route and workspace (BENCH_TENANT_REPEAT).
    repeat = options.tenant_repeat
    routes = await compare(sides, settings.database_url, whale, options, repeat)
    return WhaleSpread(data, copies, shards, routes, repeat)


async def _version(copy: ClusterCopy) -> str:
    ch = ClickHouse.from_url(copy.layout.url(), pool_size=1, cluster=copy.layout.name)
    try:
        return str((await ch.fetch("SELECT version()"))[0][0])
    finally:
        ch.close()


async def measure(
    settings: Settings, env: Mapping[str, str], options: BenchOptions, dataset: Dataset
) -> ClusterBench:
    """The route bench's data on the cluster, routes and ingest timed; the whale spread with
    BENCH_TENANTS."""
    load_before = os.getloadavg()
    layout = cluster_data.layout(settings, CLUSTER_DATABASE)
    await cluster_data.ensure_running(layout)
    copy = await cluster_data.copy(
        layout, "workspace", settings.database_url, settings.clickhouse_url
    )
    cluster_env = _cluster_env(env, options.database, copy, options)
    sides = [Side(SINGLE, dict(env)), Side("cluster", cluster_env)]
    routes = await compare(
        sides, settings.database_url, dataset.workspace_id, options, options.repeat
    )
    ingested = await _ingest(cluster_env)
    spread = await _spread(env, options) if options.tenants else None
    return ClusterBench(
        copy=copy,
        demo=dataset.counts,
        version=await _version(copy),
        routes=routes,
        ingest=ingested,
        spread=spread,
        load=(load_before, os.getloadavg()),
        repeat=options.repeat,
        warmup=options.warmup,
    )
