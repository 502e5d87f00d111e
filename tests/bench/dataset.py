"""The bench dataset: its own PostgreSQL and ClickHouse databases holding the demo workspace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlparse

import asyncpg

from services.config import Settings
from services.demo import load_demo
from services.demo import workspace as demo_workspace
from services.stores.clickhouse import ClickHouse
from services.stores.migrate import migrate
from tests import databases
from tests.bench.merges import settle
from tests.bench.options import DATABASE, RESERVED, BenchOptions
from tests.bench.progress import say

KINDS = ("clicks", "leads", "sales")


@dataclass(frozen=True)
class Dataset:
    """The demo workspace the bench queries and what it holds."""

    workspace_id: int
    counts: dict[str, int]
    first: str
    last: str
    built: bool

    @property
    def days(self) -> float:
        """Days between the first and the last click."""
        span = datetime.fromisoformat(self.last) - datetime.fromisoformat(self.first)
        return span.total_seconds() / 86400


def _database(url: str) -> str:
    name = urlparse(url).path.lstrip("/")
    if not name.startswith(DATABASE) or name in RESERVED:  # never drop anything but the bench's
        raise RuntimeError(f"refusing to touch database {name!r}: the bench uses {DATABASE!r}")
    return name


async def drop_databases(settings: Settings) -> None:
    """Drop the bench databases in PostgreSQL and ClickHouse."""
    _database(settings.database_url)
    _database(settings.clickhouse_url)
    await databases.drop_databases(settings.database_url, settings.clickhouse_url)


async def counts(ch: ClickHouse, workspace_id: int) -> dict[str, int]:
    """Events of each kind the workspace has in ClickHouse."""
    found = {}
    for kind in KINDS:
        rows = await ch.fetch(
            f"SELECT count() FROM {kind} WHERE workspace_id = %(ws)s", {"ws": workspace_id}
        )
        found[kind] = int(rows[0][0])
    return found


async def _existing(settings: Settings, clicks: int) -> int | None:
    """The demo workspace id when the bench databases already hold `clicks` demo clicks."""
    try:
        conn = await asyncpg.connect(settings.database_url)
    except asyncpg.InvalidCatalogNameError:
        return None
    try:
        row = await demo_workspace.find(conn)
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()
    if row is None:
        return None
    ch = ClickHouse.from_url(settings.clickhouse_url, pool_size=1)
    try:
        found = await counts(ch, int(row["id"]))
    except Exception as exc:  # noqa: BLE001 - a missing database or table means "rebuild"
        say(f"no usable ClickHouse dataset ({type(exc).__name__}); rebuilding")
        return None
    finally:
        ch.close()
    if found["clicks"] != clicks:
        say(f"the bench dataset has {found['clicks']:,} clicks, not {clicks:,}; rebuilding")
        return None
    return int(row["id"])


async def ensure(settings: Settings, options: BenchOptions) -> Dataset:
    """The demo dataset of options.clicks clicks, reused when present, else built from scratch."""
    existing = None if options.fresh else await _existing(settings, options.clicks)
    built = existing is None
    if existing is None:
        say(f"building a fresh dataset of {options.clicks:,} clicks over {options.days} days")
        await drop_databases(settings)
        await migrate(settings.database_url, settings.clickhouse_url)
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
        ch = ClickHouse.from_url(settings.clickhouse_url, pool_size=2)
        try:
            made = await load_demo(
                pool,
                ch,
                clicks=options.clicks,
                days=options.days,
                progress=lambda message: say(f"demo: {message}"),
            )
        finally:
            ch.close()
            await pool.close()
        workspace_id = int(made["workspace_id"])
    else:
        workspace_id = existing
        say(f"reusing the bench dataset ({options.clicks:,} clicks); --fresh rebuilds it")
    # A previous run may predate a migration, which leaves new parts as a build does.
    migrated = await migrate(settings.database_url, settings.clickhouse_url)
    ch = ClickHouse.from_url(settings.clickhouse_url, pool_size=1)
    try:
        if built or migrated:
            await settle(ch, "dataset")
        found = await counts(ch, workspace_id)
        rows = await ch.fetch(
            "SELECT toString(min(timestamp), 'UTC'), toString(max(timestamp), 'UTC') FROM clicks"
            " WHERE workspace_id = %(ws)s",
            {"ws": workspace_id},
        )
    finally:
        ch.close()
    return Dataset(workspace_id, found, str(rows[0][0]), str(rows[0][1]), built)


async def top_link(ch: ClickHouse, workspace_id: int) -> int | None:
    """The workspace's link with the most human clicks in the last 30 days, if any."""
    rows = await ch.fetch(
        "SELECT link_id, count() AS n FROM clicks WHERE workspace_id = %(ws)s AND is_bot = 0"
        " AND timestamp >= now() - INTERVAL 30 DAY GROUP BY link_id ORDER BY n DESC, link_id"
        " LIMIT 1",
        {"ws": workspace_id},
    )
    return int(rows[0][0]) if rows else None
