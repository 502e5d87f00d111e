"""Measures one route: gateway uncached and cached, the engine's SQL on ClickHouse, PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from services.auth.principal import Principal
from services.stores.clickhouse import ClickHouse
from services.stores.deps import Deps
from tests.bench import answers, engine_sql
from tests.bench.baseline import PostgresBaseline
from tests.bench.engine_sql import EnginePlan
from tests.bench.options import BenchOptions
from tests.bench.progress import say
from tests.bench.routes import Route
from tests.bench.timing import Samples

NO_CACHE = {"Cache-Control": "no-cache"}
X_CACHE = "x-cache"


@dataclass
class RouteResult:
    """Everything measured and checked for one route."""

    route: Route
    request: str
    plan: EnginePlan
    cold: Samples = field(default_factory=Samples)
    cached: Samples = field(default_factory=Samples)
    direct: Samples = field(default_factory=Samples)
    postgres: Samples = field(default_factory=Samples)
    cache_hits: int = 0
    cache_problems: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    visitor_error: float = 0.0

    def ratio(self, numerator: Samples, denominator: Samples) -> float:
        """numerator p50 / denominator p50."""
        return numerator.p50 / denominator.p50 if denominator.p50 else float("nan")


@dataclass
class Harness:
    """What every route's measurement uses."""

    options: BenchOptions
    http: httpx.AsyncClient
    ch: ClickHouse
    deps: Deps
    caller: Principal
    baseline: PostgresBaseline
    link_id: int


async def _get(harness: Harness, path: str, query: dict[str, Any], cold: bool) -> httpx.Response:
    response = await harness.http.get(path, params=query, headers=NO_CACHE if cold else None)
    if response.status_code != 200:
        raise RuntimeError(
            f"GET {path} answered {response.status_code}: {response.text[:500]}"
            " (the system's logs are in .run/bench/logs/)"
        )
    return response


def _note_cache(result: RouteResult, response: httpx.Response, cold: bool) -> None:
    state = response.headers.get(X_CACHE)
    if state is None:
        problem = "the gateway sends no x-cache header (snapshot cache missing or disabled)"
    elif cold and state != "MISS":
        problem = f"Cache-Control: no-cache was not honoured (x-cache {state})"
    elif not cold and state != "HIT":
        problem = f"a repeated request was not served from the cache (x-cache {state})"
    else:
        if not cold:
            result.cache_hits += 1
        return
    if problem not in result.cache_problems:
        result.cache_problems.append(problem)


async def measure(harness: Harness, route: Route) -> RouteResult:
    """Check the route's answer against PostgreSQL, then time it every way."""
    options = harness.options
    path = route.url_path(harness.link_id)
    request = str(httpx.URL(path, params=route.query))
    plan = await engine_sql.capture(harness.deps, harness.caller, route, harness.link_id)
    result = RouteResult(route, request, plan)
    say(f"{route.name}: {plan.statements} statements in {len(plan.stages)} stage(s) on"
        f" {', '.join(plan.tables())}; checking the answer")  # fmt: skip

    # The first PostgreSQL run is its warm-up and gives the expected answer.
    expected = await harness.baseline.answer(route.shape, plan.ctx)
    first = await _get(harness, path, route.query, cold=True)
    got = answers.from_gateway(route.shape, first.json()["data"])
    result.mismatches = answers.differences(got, expected)
    result.visitor_error = answers.worst_visitor_error(got, expected)
    if result.mismatches:
        say(f"{route.name}: ANSWER MISMATCH: {'; '.join(result.mismatches)}")

    async def cold() -> None:
        _note_cache(result, await _get(harness, path, route.query, cold=True), cold=True)

    async def cached() -> None:
        _note_cache(result, await _get(harness, path, route.query, cold=False), cold=False)

    async def direct() -> None:
        await engine_sql.run(harness.ch, plan)

    async def postgres() -> None:
        await harness.baseline.answer(route.shape, plan.ctx)

    for _ in range(options.warmup):
        await result.cold.time(cold, keep=False)
        await result.cached.time(cached, keep=False)
        await result.direct.time(direct, keep=False)
    result.cache_hits = 0
    # Interleaved, so drift in the machine's load affects every column alike. The uncached
    # request stores a fresh snapshot; the cached one right after it reads that snapshot.
    at_least = min(5, options.pg_repeat)
    for i in range(options.repeat):
        await result.cold.time(cold)
        await result.cached.time(cached)
        await result.direct.time(direct)
        pg_runs = len(result.postgres.values)
        if pg_runs < options.pg_repeat and (
            pg_runs < at_least or result.postgres.total_seconds < options.pg_seconds
        ):
            await result.postgres.time(postgres)
        if (i + 1) % 10 == 0:
            say(f"{route.name}: {i + 1}/{options.repeat}")
    say(
        f"{route.name}: p50 gateway {result.cold.p50:.1f} ms uncached, {result.cached.p50:.1f} ms"
        f" cached; ClickHouse {result.direct.p50:.1f} ms; PostgreSQL {result.postgres.p50:.1f} ms"
    )
    return result
