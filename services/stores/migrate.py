"""Versioned schema migrations for PostgreSQL and ClickHouse, applied under one advisory lock."""

from __future__ import annotations

from urllib.parse import urlparse, urlunparse

import asyncpg

from services.stores.clickhouse import ClickHouse, ClickHouseTarget
from services.stores.cluster_migrate import migrate_cluster
from services.stores.migration_files import MIGRATION_TABLE, Migration, load

__all__ = ["LOCK_KEY", "Migration", "apply_clickhouse", "load", "migrate"]

# Any constant shared by every migrating process; serialises concurrent `linkpulse migrate` runs.
LOCK_KEY = 0x6C696E6B70756C


async def ensure_postgres_database(url: str) -> None:
    """Create the database named by url if it does not exist (another process may race us)."""
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    try:
        conn = await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        admin = await asyncpg.connect(urlunparse(parsed._replace(path="/postgres")))
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            pass  # created by a concurrent migrate (the catalog race surfaces as either error)
        finally:
            await admin.close()
    else:
        await conn.close()


async def _migrate_postgres(conn: asyncpg.Connection) -> list[str]:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    done = []
    for migration in load("postgres"):
        if migration.version in applied:
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
        done.append(f"postgres/{migration.name}")
    return done


async def _migrate_clickhouse(target: ClickHouseTarget) -> list[str]:
    server = ClickHouse(ClickHouseTarget(**{**target.__dict__, "database": "default"}), pool_size=1)
    await server.command(f"CREATE DATABASE IF NOT EXISTS {target.database}")
    server.close()
    ch = ClickHouse(target, pool_size=1)
    try:
        return await apply_clickhouse(ch)
    finally:
        ch.close()


async def apply_clickhouse(ch: ClickHouse) -> list[str]:
    """Apply the pending ClickHouse migrations to ch's database; returns the names applied."""
    await ch.command(MIGRATION_TABLE)
    applied = {row[0] for row in await ch.fetch("SELECT version FROM schema_migrations")}
    done = []
    for migration in load("clickhouse"):
        if migration.version in applied:
            continue
        # Statements and scripts are idempotent, so a crash midway is safe to rerun.
        if migration.script is not None:
            await migration.script(ch)
        for statement in migration.statements():
            await ch.command(statement)
        await ch.insert(
            "schema_migrations", ("version", "name"), [(migration.version, migration.name)]
        )
        done.append(f"clickhouse/{migration.name}")
    return done


async def migrate(
    database_url: str, clickhouse_url: str, cluster: str = "", sharding: str = "workspace"
) -> list[str]:
    """Apply every pending migration of both stores (ClickHouse on every node of cluster when
    one is named); returns the names applied."""
    await ensure_postgres_database(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            applied = await _migrate_postgres(conn)
            target = ClickHouseTarget.from_url(clickhouse_url, cluster)
            if cluster:
                applied += await migrate_cluster(target, sharding)
            else:
                applied += await _migrate_clickhouse(target)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        await conn.close()
    return applied
