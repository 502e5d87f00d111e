"""Versioned schema migrations for PostgreSQL and ClickHouse, applied under one advisory lock."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import asyncpg

from services.stores.clickhouse import ClickHouse, ClickHouseTarget

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant shared by every migrating process; serialises concurrent `linkpulse migrate` runs.
LOCK_KEY = 0x6C696E6B70756C


# A ClickHouse migration written in Python (a `.py` file's `apply`), for what SQL alone cannot
# say idempotently on every server version, such as converting tables that hold data.
Script = Callable[[ClickHouse], Awaitable[None]]


@dataclass(frozen=True)
class Migration:
    """One SQL file (or Python script): version (its numeric prefix), name, statements."""

    version: int
    name: str
    sql: str
    script: Script | None = None

    def statements(self) -> list[str]:
        """Statements split on `;` at line ends (ClickHouse runs one statement per call)."""
        body = "\n".join(
            line for line in self.sql.splitlines() if not line.lstrip().startswith("--")
        )
        return [s.strip() for s in re.split(r";\s*$", body, flags=re.M) if s.strip()]


def load(store: str) -> list[Migration]:
    """Migrations of one store ('postgres' or 'clickhouse'), in version order."""
    found = []
    for path in sorted((MIGRATIONS / store).iterdir()):
        if path.suffix not in (".sql", ".py") or not path.name[:1].isdigit():
            continue
        version = int(path.name.split("_", 1)[0])
        if path.suffix == ".sql":
            found.append(Migration(version, path.stem, path.read_text()))
        else:
            found.append(Migration(version, path.stem, "", _script(path)))
    return sorted(found, key=lambda m: m.version)


def _script(path: Path) -> Script:
    """The `apply` coroutine function of a Python migration file."""
    spec = importlib.util.spec_from_file_location(f"linkpulse_migration_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load migration {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    apply: Script = module.apply
    return apply


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
    await ch.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String,"
        " applied_at DateTime DEFAULT now()) ENGINE = MergeTree() ORDER BY version"
    )
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


async def migrate(database_url: str, clickhouse_url: str) -> list[str]:
    """Apply every pending migration of both stores; returns the names applied."""
    await ensure_postgres_database(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            applied = await _migrate_postgres(conn)
            applied += await _migrate_clickhouse(ClickHouseTarget.from_url(clickhouse_url))
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        await conn.close()
    return applied
