"""`python -m tests.bench` (`make bench`): build or reuse the dataset, start the system, measure
every route, write docs/benchmarks.md and print its tables."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg
import httpx

from services import config
from services.admin.credentials import create_api_key, revoke_api_key
from services.auth.resolver import TokenResolver
from services.money import FxTable
from services.stores.clickhouse import ClickHouse, ClickHouseTarget
from services.stores.deps import Deps
from services.stores.redisclient import create_redis
from tests.bench import (
    cluster,
    cluster_report,
    concurrency,
    pgtables,
    platform_report,
    report,
    system,
    tenant_data,
    tenants,
)
from tests.bench import dataset as dataset_mod
from tests.bench import export as export_bench
from tests.bench import live as live_bench
from tests.bench.baseline import PostgresBaseline
from tests.bench.ingest import IngestResult
from tests.bench.options import BenchOptions, parse, system_env
from tests.bench.progress import say
from tests.bench.routes import ROUTES
from tests.bench.runner import Harness, RouteResult, measure

PG_SETTINGS = ("shared_buffers", "work_mem", "max_parallel_workers_per_gather", "jit")


async def _clickhouse_answers(url: str) -> None:
    target = ClickHouseTarget.from_url(url)
    server = ClickHouse(ClickHouseTarget(**{**target.__dict__, "database": "default"}), 1)
    try:
        if not await server.ping():
            raise SystemExit(
                f"bench: ClickHouse does not answer at {target.host}:{target.port};"
                " start it with `.venv/bin/linkpulse stack clickhouse` (make bench does)"
            )
    finally:
        server.close()


async def _environment(pool: asyncpg.Pool, ch: ClickHouse) -> report.Environment:
    version = (await ch.fetch("SELECT version()"))[0][0]
    settings = {name: str(await pool.fetchval(f"SHOW {name}")) for name in PG_SETTINGS}
    return report.Environment(
        clickhouse=str(version),
        postgres=str(await pool.fetchval("SHOW server_version")).split()[0],
        postgres_settings=settings,
    )


def _platform_only(options: BenchOptions) -> bool:
    """True when BENCH_ONLY names the multi-tenant or concurrency section and neither the export
    nor the live one (route names then narrow the multi-tenant section)."""
    named = set(options.only)
    return bool(named & {tenants.SECTION, concurrency.SECTION}) and not (
        named & {"export", live_bench.SECTION}
    )


def _spread(dataset: tenant_data.TenantDataset, count: int) -> list[int]:
    """count workspaces of the multi-tenant dataset spread evenly over the size ranks (no whale)."""
    ids = [t.workspace_id for t in dataset.tenants[1:]]
    step = max(1, len(ids) // count)
    return ids[::step][:count]


async def _platform(options: BenchOptions, env: dict[str, str]) -> tuple[str, int]:
    """The multi-tenant and concurrency sections (those wanted): their markdown, and 2 when an
    answer or an ingest count was wrong."""
    text, trouble = "", 0
    tenant_bench = None
    if tenants.wanted(options):
        tenant_bench = await tenants.measure(env, options)
        text += "\n" + platform_report.tenants_markdown(tenant_bench, options)
        print(platform_report.tenants_verdict(tenant_bench))
        trouble |= 2 if tenant_bench.mismatches() else 0
    if concurrency.wanted(options):
        if options.tenants:
            data = tenant_bench.dataset if tenant_bench else await tenants.dataset(env, options)
            system_env_, _ = tenants.environments(env, options)
            read = _spread(data, concurrency.READ_KEYS)
            where = f"the multi-tenant dataset ({len(read)} workspaces spread over the size ranks)"
        else:
            demo = await dataset_mod.ensure(config.load(), options)
            system_env_, read = env, [demo.workspace_id]
            where = f"the demo workspace of `{options.database}` ({demo.counts['clicks']:,} clicks)"
        try:
            bench = await concurrency.measure(system_env_, options, read, where)
        except Exception as exc:  # noqa: BLE001 - the other sections' results are still written
            say(f"concurrency: FAILED: {exc!r}")
            return text + f"\n## Concurrency\n\nThe section failed: `{exc!r}`.\n", 2
        text += "\n" + platform_report.concurrency_markdown(bench, options)
        print(platform_report.concurrency_verdict(bench))
        trouble |= 2 if any(r.ingested and not r.ingested.exact for r in bench.runs) else 0
    return text, trouble


async def _cluster(
    options: BenchOptions, env: dict[str, str], single_ingest: list[IngestResult] | None
) -> tuple[str, int]:
    """The cluster section when wanted: its markdown, and 2 when a cluster answer differed."""
    if not cluster.wanted(options):
        return "", 0
    settings = config.load()
    dataset = await dataset_mod.ensure(settings, options)
    try:
        bench = await cluster.measure(settings, env, options, dataset)
    except Exception as exc:  # noqa: BLE001 - the other sections' results are still written
        failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        say(f"cluster: FAILED: {failure}")
        return (
            "\n## Cluster: single node vs the dev ClickHouse cluster\n\n"
            f"The section failed: `{failure}`.\n",
            2,
        )
    print(cluster_report.verdict(bench))
    return "\n" + cluster_report.markdown(bench, options, single_ingest), (
        2 if bench.mismatches() else 0
    )


async def run(options: BenchOptions) -> int:
    """The whole benchmark; 0 when every answer matched the expected one, 2 otherwise."""
    env = system_env(database=options.database, port_base=options.port_base)
    os.environ.update(env)  # this process reads the same settings as the system under test
    settings = config.load()
    await _clickhouse_answers(settings.clickhouse_url)
    if _platform_only(options):
        text, trouble = await _platform(options, env)
        cluster_text, cluster_trouble = await _cluster(options, env, None)
        _write(options, f"# Benchmarks\n\n{report.generated()}\n" + text + cluster_text)
        return trouble | cluster_trouble
    dataset = await dataset_mod.ensure(settings, options)
    say(
        f"dataset: workspace {dataset.workspace_id}, {dataset.counts['clicks']:,} clicks,"
        f" {dataset.counts['leads']:,} leads, {dataset.counts['sales']:,} sales"
    )
    routes = [r for r in ROUTES if not options.only or r.name in options.only]
    if not routes and not (
        export_bench.wanted(options.only)
        or live_bench.wanted(options.only)
        or tenants.wanted(options)
        or concurrency.wanted(options)
        or cluster.wanted(options)
    ):
        raise SystemExit(f"bench: no route named {options.only}; see tests/bench/routes.py")
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=6)
    ch = ClickHouse.from_url(settings.clickhouse_url)
    redis = create_redis(settings.redis_url)
    key = None
    results: list[RouteResult] = []
    try:
        await pgtables.ensure(pool, ch, dataset)
        key = await create_api_key(pool, dataset.workspace_id, ["analytics:read"], name="bench")
        caller = await TokenResolver(pool).resolve(key["key"])
        link_id = await dataset_mod.top_link(ch, dataset.workspace_id)
        if link_id is None:
            raise SystemExit("bench: the dataset has no clicks in the last 30 days; use --fresh")
        environment = await _environment(pool, ch)
        with system.running(settings, env) as gateway_url:
            async with httpx.AsyncClient(
                base_url=gateway_url,
                headers={"Authorization": f"Bearer {key['key']}"},
                timeout=120,
            ) as http:
                harness = Harness(
                    options=options,
                    http=http,
                    ch=ch,
                    deps=Deps(settings, pool, ch, redis, FxTable(pool)),
                    caller=caller,
                    baseline=PostgresBaseline(pool),
                    link_id=link_id,
                )
                for route in routes:
                    results.append(await measure(harness, route))
    finally:
        if key is not None:
            await revoke_api_key(pool, key["id"])
        await redis.aclose()
        ch.close()
        await pool.close()

    exported = None
    if export_bench.wanted(options.only):
        exported = await export_bench.measure(settings, env, dataset)
    live = await live_bench.measure(settings, env) if live_bench.wanted(options.only) else None
    text = report.markdown(options, dataset, environment, results)
    if exported is not None:
        text += "\n" + export_bench.markdown(exported, dataset.counts["clicks"])
    if live is not None:
        text += "\n" + live_bench.markdown(live)
    print(report.tables(results))
    print()
    print(report.verdict(results))
    if exported is not None:
        print(export_bench.verdict(exported))
    if live is not None:
        print(live_bench.verdict(live))
    problems = report.problems(results)
    if problems:
        print(problems)
    platform_text, platform_trouble = await _platform(options, env)
    cluster_text, cluster_trouble = await _cluster(options, env, live.ingest if live else None)
    _write(options, text + platform_text + cluster_text)
    return 2 if any(r.mismatches for r in results) else platform_trouble | cluster_trouble


def _write(options: BenchOptions, text: str) -> None:
    """Write the report, keeping the hand-written sections at the end of the one it replaces."""
    options.output.parent.mkdir(parents=True, exist_ok=True)
    kept = report.handwritten(options.output)
    options.output.write_text(text + ("\n" + kept if kept else ""))
    say(f"wrote {options.output}")


def main() -> int:
    """Entry point."""
    return asyncio.run(run(parse()))


if __name__ == "__main__":
    sys.exit(main())
