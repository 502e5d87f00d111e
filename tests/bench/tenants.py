"""`make bench`'s multi-tenant section: per route, uncached p50/p95 through the gateway for a
small workspace, a mid one and the whale of the multi-tenant dataset (`tenant_data`), and for the
same small workspace on databases holding only it ("alone", a second system started beside the
first), every answer checked against `exact`.

Opt-in: BENCH_TENANTS=<clicks> (e.g. 50000000 = 50M clicks over BENCH_TENANT_WORKSPACES=10000
workspaces) turns it on; BENCH_TENANT_REPEAT (15) sets the samples per route and workspace;
BENCH_ONLY=tenants runs just this section. The dataset is reused while its parameters are unchanged.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from services.admin.credentials import create_api_key, revoke_api_key
from services.auth.resolver import TokenResolver
from services.config import Settings
from services.money import FxTable
from services.query import params
from services.stores.clickhouse import ClickHouse
from services.stores.deps import Deps
from services.stores.redisclient import create_redis
from tests.bench import answers, engine_sql, system, tenant_data
from tests.bench.dataset import top_link
from tests.bench.exact import ExactAnswers
from tests.bench.options import BenchOptions, other_system_env
from tests.bench.progress import say
from tests.bench.routes import ROUTES, Breakdown, Route
from tests.bench.runner import NO_CACHE, X_CACHE
from tests.bench.tenant_data import TenantDataset, Urls
from tests.bench.tenant_sizes import Tenant, closest
from tests.bench.timing import Samples

SECTION = "tenants"
NAMES = ("query", "gateway")
# The systems' own ports and Redis databases: they run beside the route bench's and each other.
TENANTS_PORTS, ALONE_PORTS = 100, 200  # added to BENCH_PORT_BASE
TENANTS_REDIS, ALONE_REDIS = 13, 12
# Sizes at 50M clicks (scaled with BENCH_TENANTS) of the small and mid workspace measured.
SMALL_CLICKS, MID_CLICKS = 5_000, 200_000
# Targets of the issue (p50, ms).
WHALE_TOTALS_MS = 50.0
WHALE_BREAKDOWN_MS = 150.0
SMALL_MS = 15.0
SMALL_OVER_ALONE = 1.2
TARGETS = ("small", "alone", "mid", "whale")


@dataclass
class Measured:
    """One workspace's samples of one route, and its answer check."""

    samples: Samples = field(default_factory=Samples)
    mismatches: list[str] = field(default_factory=list)
    visitor_error: float = 0.0
    cache_problems: list[str] = field(default_factory=list)
    # Answers other than 200 (a workspace whose first answer failed is not timed further).
    errors: list[str] = field(default_factory=list)


@dataclass
class TenantRoute:
    """One route measured on every target workspace."""

    route: Route
    by_target: dict[str, Measured]

    def p50(self, target: str) -> float:
        """The target's median."""
        return self.by_target[target].samples.p50

    def missed(self) -> list[str]:
        """Which of the section's targets this route misses (empty: all met)."""
        found = [f"{t}: {e}" for t, m in self.by_target.items() for e in m.errors[:1]]
        whale = self.p50("whale")
        limit = WHALE_BREAKDOWN_MS if isinstance(self.route.shape, Breakdown) else WHALE_TOTALS_MS
        if not whale <= limit:
            found.append(f"whale {whale:.0f} ms > {limit:g}")
        small = self.p50("small")
        if not small <= SMALL_MS:
            found.append(f"small {small:.1f} ms > {SMALL_MS:g}")
        ratio = small / self.p50("alone") if self.p50("alone") else math.nan
        if not ratio <= SMALL_OVER_ALONE:
            found.append(f"small/alone {ratio:.2f} > {SMALL_OVER_ALONE}")
        return found


@dataclass
class TenantsBench:
    """Everything the section measured."""

    dataset: TenantDataset
    workspaces: dict[str, Tenant]
    alone_counts: dict[str, int]
    repeat: int
    routes: list[TenantRoute]

    def mismatches(self) -> list[str]:
        """Each wrong answer (its first difference) or failed request, by route and workspace."""
        return [
            f"{r.route.name} ({target}): {(measured.errors or measured.mismatches)[0]}"
            for r in self.routes
            for target, measured in r.by_target.items()
            if measured.errors or measured.mismatches
        ]


def wanted(options: BenchOptions) -> bool:
    """True when BENCH_TENANTS is set and BENCH_ONLY does not leave the section out."""
    return options.tenants > 0 and (not options.only or SECTION in options.only)


@dataclass
class _Target:
    """A workspace as one system serves it: key, caller, top link, exact answers, client."""

    name: str
    tenant: Tenant
    http: httpx.AsyncClient
    deps: Deps
    caller: Any
    exact: ExactAnswers
    link_id: int


class _Store:
    """The open stores of one database and the keys made on it (revoked on close)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self.ch = ClickHouse.from_url(settings.clickhouse_url, pool_size=4)
        self.redis = create_redis(settings.redis_url)
        self.keys: list[int] = []

    async def open(self) -> _Store:
        self.pool = await asyncpg.create_pool(self.settings.database_url, min_size=1, max_size=4)
        return self

    @property
    def deps(self) -> Deps:
        """The stores as the query service's presets take them."""
        assert self.pool is not None
        return Deps(self.settings, self.pool, self.ch, self.redis, FxTable(self.pool))

    async def key(self, workspace_id: int) -> tuple[str, Any]:
        """A new analytics:read key of the workspace and the caller it resolves to."""
        assert self.pool is not None
        made = await create_api_key(self.pool, workspace_id, ["analytics:read"], name="bench")
        self.keys.append(int(made["id"]))
        return str(made["key"]), await TokenResolver(self.pool).resolve(made["key"])

    async def close(self) -> None:
        if self.pool is not None:
            for key_id in self.keys:
                await revoke_api_key(self.pool, key_id)
            await self.pool.close()
        await self.redis.aclose()
        self.ch.close()


async def _target(
    name: str, tenant: Tenant, store: _Store, gateway_url: str, stack: contextlib.AsyncExitStack
) -> _Target:
    key, caller = await store.key(tenant.workspace_id)
    http = await stack.enter_async_context(
        httpx.AsyncClient(
            base_url=gateway_url, headers={"Authorization": f"Bearer {key}"}, timeout=120
        )
    )
    assert store.pool is not None
    return _Target(
        name,
        tenant,
        http,
        store.deps,
        caller,
        ExactAnswers(store.ch, store.pool),
        await top_link(store.ch, tenant.workspace_id) or 0,
    )


async def _check(target: _Target, route: Route, measured: Measured) -> None:
    """The first (uncached) answer against the exact one."""
    message = engine_sql.request(route, target.link_id)
    ctx = await params.resolve(target.deps, target.caller, message)
    expected = await target.exact.answer(route.shape, ctx)
    response = await _get(target, route, measured)
    if response is None:
        return
    got = answers.from_gateway(route.shape, response.json()["data"])
    measured.mismatches = answers.differences(got, expected, limit=3, expected="exact")
    measured.visitor_error = answers.worst_visitor_error(got, expected)
    if measured.mismatches:
        say(f"tenants: {route.name} ({target.name}): ANSWER MISMATCH {measured.mismatches}")


async def _get(target: _Target, route: Route, measured: Measured) -> httpx.Response | None:
    """The uncached answer; None (noted in measured.errors) when it is not a 200."""
    path = route.url_path(target.link_id)
    response = await target.http.get(path, params=route.query, headers=NO_CACHE)
    if response.status_code != 200:
        error = f"HTTP {response.status_code}"
        with contextlib.suppress(ValueError, KeyError, TypeError):
            error += f" {response.json()['error']['code']}"
        measured.errors.append(error)
        say(f"tenants: {route.name} ({target.name}): {error}: {response.text[:200]}")
        return None
    state = response.headers.get(X_CACHE)
    if state != "MISS":
        problem = f"an uncached request answered x-cache {state}"
        if problem not in measured.cache_problems:
            measured.cache_problems.append(problem)
    return response


async def _measure_route(
    route: Route, targets: list[_Target], repeat: int, warmup: int
) -> TenantRoute:
    by_target = {t.name: Measured() for t in targets}
    for target in targets:
        await _check(target, route, by_target[target.name])
    timed = [t for t in targets if not by_target[t.name].errors]
    for round_ in range(warmup + repeat):
        for target in list(timed):  # interleaved: drift in the machine's load hits every column
            measured = by_target[target.name]
            began = time.perf_counter()
            if await _get(target, route, measured) is None:
                timed.remove(target)  # a failure (a deadline, say) is not timed again
            elif round_ >= warmup:
                measured.samples.values.append((time.perf_counter() - began) * 1000)
    result = TenantRoute(route, by_target)
    say(f"tenants: {route.name}: p50 " + ", ".join(
        f"{t} {result.p50(t):.1f}" for t in TARGETS) + " ms")  # fmt: skip
    return result


def _urls(settings: Settings) -> Urls:
    return Urls(settings.database_url, settings.clickhouse_url)


@contextlib.contextmanager
def _systems(tenants_env: dict[str, str], alone_env: dict[str, str]) -> Iterator[tuple[str, str]]:
    with (
        system.running(system.settings_of(tenants_env), tenants_env, NAMES) as tenants_url,
        system.running(system.settings_of(alone_env), alone_env, NAMES) as alone_url,
    ):
        yield tenants_url, alone_url


def environments(
    env: Mapping[str, str], options: BenchOptions
) -> tuple[dict[str, str], dict[str, str]]:
    """The environments of the tenants system and of the alone system."""
    base = options.port_base
    tenants_env = other_system_env(
        env, tenant_data.TENANTS_DATABASE, TENANTS_REDIS, base + TENANTS_PORTS, "bench-tenants"
    )
    alone_env = other_system_env(
        env, tenant_data.ALONE_DATABASE, ALONE_REDIS, base + ALONE_PORTS, "bench-alone"
    )
    return tenants_env, alone_env


async def dataset(env: Mapping[str, str], options: BenchOptions) -> TenantDataset:
    """The multi-tenant dataset of the options (built or reused)."""
    tenants_env, _ = environments(env, options)
    params_ = tenant_data.Params(options.tenants, options.tenant_workspaces, options.days)
    return await tenant_data.ensure(_urls(system.settings_of(tenants_env)), params_, options.fresh)


async def measure(env: Mapping[str, str], options: BenchOptions) -> TenantsBench:
    """Build or reuse the dataset, copy the small workspace alone, measure every route."""
    tenants_env, alone_env = environments(env, options)
    tenants_settings, alone_settings = (system.settings_of(e) for e in (tenants_env, alone_env))
    data = await dataset(env, options)
    scale = options.tenants / 50_000_000
    chosen = {
        "small": closest(data.tenants, max(20, round(SMALL_CLICKS * scale))),
        "mid": closest(data.tenants, max(100, round(MID_CLICKS * scale))),
        "whale": data.tenants[0],
    }
    named = (
        f"{name} workspace {t.workspace_id} ({t.clicks:,} clicks)" for name, t in chosen.items()
    )
    say("tenants: measuring " + ", ".join(named))
    alone_counts = await tenant_data.copy_alone(
        _urls(tenants_settings), _urls(alone_settings), chosen["small"].workspace_id
    )
    say(f"tenants: small workspace alone: {alone_counts}")
    chosen_routes = [r for r in ROUTES if r.name in options.only]
    routes = chosen_routes or list(ROUTES)  # route names in BENCH_ONLY narrow this section too
    results = []
    shared, alone = await _Store(tenants_settings).open(), await _Store(alone_settings).open()
    try:
        with _systems(tenants_env, alone_env) as (tenants_url, alone_url):
            async with contextlib.AsyncExitStack() as stack:
                targets = [
                    await _target("small", chosen["small"], shared, tenants_url, stack),
                    await _target("alone", chosen["small"], alone, alone_url, stack),
                    await _target("mid", chosen["mid"], shared, tenants_url, stack),
                    await _target("whale", chosen["whale"], shared, tenants_url, stack),
                ]
                for route in routes:
                    results.append(
                        await _measure_route(route, targets, options.tenant_repeat, options.warmup)
                    )
    finally:
        await shared.close()
        await alone.close()
    return TenantsBench(
        dataset=data,
        workspaces={**chosen, "alone": chosen["small"]},
        alone_counts=alone_counts,
        repeat=options.tenant_repeat,
        routes=results,
    )
