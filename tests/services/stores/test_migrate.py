"""Migrations are versioned, idempotent and safe to run from two processes at once."""

from __future__ import annotations

import asyncio

import asyncpg

from services.stores.clickhouse import ClickHouse, ClickHouseTarget
from services.stores.migrate import apply_clickhouse, load, migrate
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


async def _at_version_2(ch: ClickHouse) -> None:
    """The schema of a deployment from before migration 3, as 0001 and 0002 made it."""
    await ch.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String,"
        " applied_at DateTime DEFAULT now()) ENGINE = MergeTree() ORDER BY version"
    )
    for migration in load("clickhouse"):
        if migration.version <= 2:
            for statement in migration.statements():
                await ch.command(statement)
            await ch.insert(
                "schema_migrations", ("version", "name"), [(migration.version, migration.name)]
            )


CLICK_FIELDS = (
    "event_id",
    "workspace_id",
    "link_id",
    "timestamp",
    "country",
    "visitor_id",
    "is_bot",
)


def _clicks(first_id: int, count: int) -> list[tuple[object, ...]]:
    """Clicks of workspace 5 over two links and 40 hours, 300 visitors (some bots)."""
    start = 1_780_000_000 - 1_780_000_000 % 3600
    return [
        (first_id + i, 5, 1 + i % 2, start + (i * 137) % (40 * 3600), ("DE", "FR", "US")[i % 3],
         f"visitor-{i % 300}", int(i % 17 == 0))
        for i in range(count)
    ]  # fmt: skip


async def _state(ch: ClickHouse) -> dict[str, object]:
    """What the conversion must keep or make: raw counts, rollup answers, column shapes."""
    raw = await ch.fetch(
        "SELECT is_bot, count(), uniqCombined(12)(visitor_hash),"
        " sum(visitor_hash = cityHash64(visitor_id)) FROM clicks WHERE workspace_id = 5"
        " GROUP BY is_bot ORDER BY is_bot"
    )
    workspace = await ch.fetch(
        "SELECT is_bot, countMerge(events), uniqCombinedMerge(12)(visitors)"
        " FROM clicks_hourly_workspace WHERE workspace_id = 5 GROUP BY is_bot ORDER BY is_bot"
    )
    links = await ch.fetch(
        "SELECT link_id, countMerge(events), uniqCombinedMerge(12)(visitors)"
        " FROM clicks_hourly_link WHERE workspace_id = 5 GROUP BY link_id ORDER BY link_id"
    )
    per_link = await ch.fetch(
        "SELECT link_id, count(), uniqCombined(12)(visitor_hash) FROM clicks WHERE workspace_id = 5"
        " GROUP BY link_id ORDER BY link_id"
    )
    columns = await ch.fetch(
        "SELECT table, name, type, default_kind FROM system.columns"
        " WHERE database = currentDatabase()"
        " AND name IN ('visitor_hash', 'country', 'visitor_id') ORDER BY table, name"
    )
    tables = {r[0] for r in await ch.fetch("SHOW TABLES")}
    return {"raw": raw, "workspace": workspace, "links": links, "per_link": per_link,
            "columns": columns, "tables": tables}  # fmt: skip


async def test_migration_3_converts_existing_data_and_reruns_safely(system, monkeypatch):
    ch_url = system.settings.clickhouse_url + "_convert"
    server = ClickHouse(
        ClickHouseTarget(**{**ClickHouseTarget.from_url(ch_url).__dict__, "database": "default"}),
        pool_size=1,
    )
    database = ClickHouseTarget.from_url(ch_url).database
    await server.command(f"DROP DATABASE IF EXISTS {database}")
    await server.command(f"CREATE DATABASE {database}")
    ch = ClickHouse.from_url(ch_url, pool_size=1)
    try:
        await _at_version_2(ch)
        await ch.insert("clicks", CLICK_FIELDS, _clicks(1, 2000))
        assert await apply_clickhouse(ch) == ["clickhouse/0003_visitor_sketches"]
        converted = await _state(ch)
        humans, bots = converted["raw"]
        assert humans[1] + bots[1] == 2000 and humans[3] == humans[1] and bots[3] == bots[1]
        # The rollups hold every stored click, with the sketch the engine merges.
        assert converted["workspace"] == [tuple(r[:3]) for r in converted["raw"]]
        assert converted["links"] == converted["per_link"]
        assert ("clicks", "country", "LowCardinality(String)", "") in converted["columns"]
        assert ("clicks", "visitor_hash", "UInt64", "MATERIALIZED") in converted["columns"]
        assert ("clicks", "visitor_id", "String", "") in converted["columns"]
        assert "clicks_hourly" not in converted["tables"]
        assert {"clicks_hourly_workspace", "clicks_hourly_link"} <= converted["tables"]

        # A crash before the migration was recorded: it runs again from the top, same result,
        # also when the backfill goes a slice of workspaces at a time (as on big tables).
        [third] = [m for m in load("clickhouse") if m.version == 3]
        assert third.script is not None
        await third.script(ch)
        assert await _state(ch) == converted
        monkeypatch.setitem(third.script.__globals__, "BACKFILL_ROWS", 300)
        await third.script(ch)
        assert await _state(ch) == converted

        # Clicks stored afterwards reach the rollups through the views.
        await ch.insert("clicks", CLICK_FIELDS, _clicks(5001, 10))
        after = await _state(ch)
        assert sum(r[1] for r in after["workspace"]) == 2010
        assert after["links"] == after["per_link"]
    finally:
        ch.close()
        await server.command(f"DROP DATABASE IF EXISTS {database}")
        server.close()
