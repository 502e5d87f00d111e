"""Migrations are versioned, idempotent and safe to run from two processes at once."""

from __future__ import annotations

import asyncio

import asyncpg

from services.stores.clickhouse import ClickHouse
from services.stores.migrate import load, migrate
from tests.databases import drop_databases


async def test_migrations_twice_and_concurrently(system):
    pg_url = system.settings.database_url + "_migrations"
    ch_url = system.settings.clickhouse_url + "_migrations"
    await drop_databases(pg_url, ch_url)
    try:
        first, second = await asyncio.gather(migrate(pg_url, ch_url), migrate(pg_url, ch_url))
        expected = {f"postgres/{m.name}" for m in load("postgres")} | {
            f"clickhouse/{m.name}" for m in load("clickhouse")
        }
        # Two processes at once: the lock makes one apply everything and the other nothing.
        assert sorted([set(first), set(second)], key=len) == [set(), expected]
        assert await migrate(pg_url, ch_url) == []
        conn = await asyncpg.connect(pg_url)
        versions = await conn.fetchval("SELECT count(*) FROM schema_migrations")
        await conn.close()
        assert versions == len(load("postgres"))
        ch = ClickHouse.from_url(ch_url, pool_size=1)
        tables = {r[0] for r in await ch.fetch("SHOW TABLES")}
        ch.close()
        assert {"clicks", "leads", "sales", "schema_migrations"} <= tables
    finally:
        await drop_databases(pg_url, ch_url)
