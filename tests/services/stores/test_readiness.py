"""Readiness against the real stores: each answers, migrations current, dead ports and silent
servers reported with detail, reports reused for an interval."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace

import asyncpg
import pytest

from services.stores.clickhouse import ClickHouse
from services.stores.migrate import load, migrate
from services.stores.migration_files import MIGRATION_TABLE
from services.stores.node_lease import leased_ids
from services.stores.readiness import (
    DEGRADED,
    DOWN,
    NOT_READY,
    OK,
    PENDING,
    READY,
    UNKNOWN,
    Dependency,
    Outcome,
    Readiness,
    node_lease_held,
    store_dependencies,
)
from services.stores.redisclient import create_redis
from tests.databases import drop_databases, drop_postgres_database
from tests.ports import free_port


@dataclass
class Stores:
    """Clients of one PostgreSQL database, Redis and one ClickHouse database."""

    pg: asyncpg.Pool
    redis: object
    ch: ClickHouse

    async def close(self) -> None:
        """Close every client."""
        await self.pg.close()
        await self.redis.aclose()  # type: ignore[attr-defined]
        self.ch.close()


async def _stores(pg_url: str, redis_url: str, ch_url: str) -> Stores:
    # min_size=0: the pool connects on first use, as a process's pool does after an outage.
    pool = await asyncpg.create_pool(pg_url, min_size=0, max_size=2)
    assert pool is not None
    return Stores(pool, create_redis(redis_url), ClickHouse.from_url(ch_url, pool_size=1))


def _readiness(stores: Stores, timeout: float = 2.0, **options: bool) -> Readiness:
    dependencies = store_dependencies(
        postgres=stores.pg, redis=stores.redis, clickhouse=stores.ch, **options
    )
    return Readiness(dependencies, timeout=timeout, interval=60.0)


def _checks(report_dict: dict[str, object]) -> dict[str, str]:
    checks = report_dict["checks"]
    assert isinstance(checks, dict)
    return {name: check["status"] for name, check in checks.items()}


@pytest.fixture
async def session_stores(system) -> AsyncIterator[Stores]:
    """Clients of the suite's migrated stores."""
    s = system.settings
    stores = await _stores(s.database_url, s.redis_url, s.clickhouse_url)
    try:
        yield stores
    finally:
        await stores.close()


@pytest.fixture
async def behind(system) -> AsyncIterator[Stores]:
    """Fresh databases migrated, then the last migration of each store forgotten."""
    pg_url = system.settings.database_url + "_readiness"
    ch_url = system.settings.clickhouse_url.split("?")[0] + "_readiness"
    await drop_databases(pg_url, ch_url, "")
    await migrate(pg_url, ch_url)
    stores = await _stores(pg_url, system.settings.redis_url, ch_url)
    try:
        last_pg = load("postgres")[-1]
        await stores.pg.execute("DELETE FROM schema_migrations WHERE version = $1", last_pg.version)
        last_ch = load("clickhouse")[-1]
        await stores.ch.command("DROP TABLE schema_migrations")
        await stores.ch.command(MIGRATION_TABLE)
        await stores.ch.insert(
            "schema_migrations",
            ("version", "name"),
            [(m.version, m.name) for m in load("clickhouse") if m.version != last_ch.version],
        )
        yield stores
    finally:
        await stores.close()
        await drop_databases(pg_url, ch_url, "")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


async def test_the_suites_stores_are_ready(session_stores: Stores) -> None:
    report = await _readiness(session_stores).report()
    body = report.to_dict()
    assert body["status"] == READY, report.summary()
    assert _checks(body) == {
        "postgres": OK,
        "postgres_migrations": OK,
        "redis": OK,
        "clickhouse": OK,
        "clickhouse_migrations": OK,
    }
    assert report.ready


async def test_migrations_behind_are_not_ready_and_named(behind: Stores) -> None:
    report = await _readiness(behind).report()
    body = report.to_dict()
    assert body["status"] == NOT_READY
    checks = body["checks"]
    assert isinstance(checks, dict)
    for store in ("postgres", "clickhouse"):
        check = checks[f"{store}_migrations"]
        assert check["status"] == PENDING
        assert check["detail"] == f"1 not applied: {load(store)[-1].name}"
        assert checks[store]["status"] == OK
    assert not report.ready
    assert "postgres_migrations pending" in report.summary()


async def test_an_empty_database_has_every_migration_pending(system) -> None:
    pg_url = system.settings.database_url + "_readiness_empty"
    await drop_postgres_database(pg_url)
    admin = await asyncpg.connect(system.settings.database_url)
    await admin.execute(f'CREATE DATABASE "{pg_url.rsplit("/", 1)[1]}"')
    await admin.close()
    pool = await asyncpg.create_pool(pg_url, min_size=0)
    assert pool is not None
    try:
        deps = store_dependencies(postgres=pool)
        report = await Readiness(deps, timeout=2.0, interval=60.0).report()
        check = report.to_dict()["checks"]["postgres_migrations"]  # type: ignore[index]
        assert check["status"] == PENDING
        assert check["detail"].startswith(f"{len(load('postgres'))} not applied: ")
    finally:
        await pool.close()
        await drop_postgres_database(pg_url)


async def test_dead_ports_are_down_and_migrations_unknown() -> None:
    stores = await _stores(
        f"postgresql://postgres@127.0.0.1:{free_port()}/x",
        f"redis://127.0.0.1:{free_port()}/0",
        f"clickhouse://default@127.0.0.1:{free_port()}/x",
    )
    try:
        report = await _readiness(stores).report()
    finally:
        await stores.close()
    body = report.to_dict()
    assert body["status"] == NOT_READY
    assert _checks(body) == {
        "postgres": DOWN,
        "postgres_migrations": UNKNOWN,
        "redis": DOWN,
        "clickhouse": DOWN,
        "clickhouse_migrations": UNKNOWN,
    }
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert "Connect" in checks["postgres"]["detail"] or "refused" in checks["postgres"]["detail"]
    assert checks["postgres_migrations"]["detail"] == "postgres is down"


async def test_a_silent_server_is_down_after_the_timeout(silent_port: int) -> None:
    pool = await asyncpg.create_pool(f"postgresql://postgres@127.0.0.1:{silent_port}/x", min_size=0)
    assert pool is not None
    redis = create_redis(f"redis://127.0.0.1:{silent_port}/0", reply_timeout=30)
    try:
        dependencies = store_dependencies(postgres=pool, redis=redis)
        report = await Readiness(dependencies, timeout=0.3, interval=60.0).report()
    finally:
        pool.terminate()
        await redis.aclose()
    checks = report.to_dict()["checks"]
    assert isinstance(checks, dict)
    assert checks["postgres"] == {
        "status": DOWN,
        "required": True,
        "detail": "no answer in 0.3s",
        "ms": checks["postgres"]["ms"],
    }
    assert checks["redis"]["detail"] == "no answer in 0.3s"


async def test_clickhouse_not_required_degrades(session_stores: Stores) -> None:
    dead = ClickHouse.from_url(f"clickhouse://default@127.0.0.1:{free_port()}/x", pool_size=1)
    dependencies = store_dependencies(
        postgres=session_stores.pg, clickhouse=dead, clickhouse_required=False
    )
    report = await Readiness(dependencies, timeout=2.0, interval=60.0).report()
    dead.close()
    assert report.status == DEGRADED and report.ready
    assert report.to_dict()["checks"]["clickhouse"]["required"] is False  # type: ignore[index]


async def test_reports_are_reused_for_the_interval(session_stores: Stores) -> None:
    calls = 0
    redis = store_dependencies(redis=session_stores.redis)[0]

    async def counted() -> Outcome:
        nonlocal calls
        calls += 1
        return await redis.probe()

    readiness = Readiness([Dependency("redis", counted)], timeout=2.0, interval=60.0)
    reports = await asyncio.gather(*(readiness.report() for _ in range(50)))
    assert calls == 1
    assert len({id(r) for r in reports}) == 1
    assert (await readiness.report()) is reports[0]
    fresh = await readiness.refresh()
    assert calls == 2 and fresh is not reports[0] and fresh.status == READY


async def test_a_cluster_is_ready_while_an_entry_node_answers(cluster_db) -> None:
    """On a cluster the client fails over between the entry nodes; migrations are read from
    the local tables' database of the node that answers."""
    await cluster_db.migrate()
    ch = cluster_db.client()
    readiness = Readiness(store_dependencies(clickhouse=ch), timeout=10.0, interval=0.0)
    try:
        report = await readiness.report()
        assert _checks(report.to_dict()) == {"clickhouse": OK, "clickhouse_migrations": OK}
        if cluster_db.cluster.own:
            cluster_db.cluster.stop("ch1")
            try:
                report = await readiness.report()
                assert report.status == READY, report.summary()
            finally:
                cluster_db.cluster.start("ch1")
        last = load("clickhouse")[-1]
        nodes = await cluster_db.nodes()
        try:
            for node in nodes.topology.nodes:
                local = nodes.client(node)
                await local.command("DROP TABLE schema_migrations")
                await local.command(MIGRATION_TABLE)
                await local.insert(
                    "schema_migrations",
                    ("version", "name"),
                    [(m.version, m.name) for m in load("clickhouse") if m.version != last.version],
                )
        finally:
            nodes.close()
        report = await readiness.report()
        assert report.status == NOT_READY
        assert report.summary() == (
            f"not_ready: clickhouse_migrations pending (1 not applied: {last.name})"
        )
    finally:
        ch.close()


async def test_minting_needs_a_live_node_lease(system, session_stores: Stores) -> None:
    settings = replace(system.settings, ingest_key_prefix=f"lp:ready:{uuid.uuid4().hex[:8]}")
    async with leased_ids(session_stores.redis, settings) as ids:  # type: ignore[arg-type]
        probe = node_lease_held(ids)
        assert await probe() == Outcome(OK, f"node {ids.node_id}")
    # Released (as on shutdown, or lost with Redis): nothing can be minted.
    outcome = await probe()
    assert outcome.status == DOWN and "no event-id node lease" in outcome.detail
