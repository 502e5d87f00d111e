"""The multi-tenant dataset (`BENCH_TENANTS`): its own databases, built ClickHouse-side, reused.

`linkpulse_bench_tenants` (PostgreSQL and ClickHouse) holds every workspace of
`tenant_sizes.tenants` with its links, campaigns, folders and tags in PostgreSQL and its clicks,
leads and sales in ClickHouse (`tenant_sql`). `bench_tenant_meta` in PostgreSQL records the
parameters and counts of a finished build, so a later run with the same parameters reuses it;
other parameters or `--fresh` rebuild it. `linkpulse_bench_alone` holds one chosen small
workspace's rows only (same ids), copied from the tenants databases on every run that needs it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.stores.clickhouse import ClickHouse
from services.stores.migrate import migrate
from tests import databases
from tests.bench import tenant_sql
from tests.bench.merges import settle
from tests.bench.options import RESERVED
from tests.bench.progress import say
from tests.bench.tenant_sizes import Tenant, chunks, tenants

TENANTS_DATABASE, ALONE_DATABASE = OWN_DATABASES = RESERVED
# Bump when the generated rows change, so an old build is not reused.
GENERATOR = 1
TIMEZONES = ("UTC", "America/New_York", "Europe/Berlin", "Asia/Tokyo")
# Clicks per INSERT … SELECT (whole chunks): progress lines, bounded statements.
CLICKS_PER_INSERT = 2_000_000
KINDS = ("clicks", "leads", "sales")


@dataclass(frozen=True)
class Urls:
    """PostgreSQL and ClickHouse URLs of one of the bench's own databases."""

    database_url: str
    clickhouse_url: str

    def name(self) -> str:
        """The database name (the same in both stores)."""
        name = self.database_url.rsplit("/", 1)[1]
        if name not in OWN_DATABASES or not self.clickhouse_url.endswith("/" + name):
            raise RuntimeError(f"refusing to touch database {name!r}: not one of the bench's own")
        return name


@dataclass(frozen=True)
class Params:
    """What a build depends on."""

    clicks: int
    workspaces: int
    days: int
    generator: int = GENERATOR


@dataclass(frozen=True)
class TenantDataset:
    """A built (or reused) multi-tenant dataset."""

    params: Params
    tenants: list[Tenant]
    counts: dict[str, int]
    end: int  # epoch seconds of the newest click
    built: bool
    seconds: float  # how long the build took (that of the reused one when reused)

    def tenant(self, workspace_id: int) -> Tenant:
        """The workspace's entry."""
        return self.tenants[workspace_id - 1]


def timezone_of(workspace_id: int) -> str:
    """The time zone of a workspace (the whale's is America/New_York)."""
    return TIMEZONES[workspace_id % len(TIMEZONES)]


async def _meta(urls: Urls) -> dict[str, Any] | None:
    try:
        conn = await asyncpg.connect(urls.database_url)
    except asyncpg.InvalidCatalogNameError:
        return None
    try:
        row = await conn.fetchrow("SELECT meta FROM bench_tenant_meta")
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()
    return None if row is None else dict(json.loads(row["meta"]))


async def counts(ch: ClickHouse, workspaces: int | None = None) -> dict[str, int]:
    """Events of each kind in the database (of workspaces 1..workspaces: the concurrency
    section ingests into workspaces of its own beyond them)."""
    where = "" if workspaces is None else f" WHERE workspace_id <= {int(workspaces)}"
    return {
        kind: int((await ch.fetch(f"SELECT count() FROM {kind}{where}"))[0][0]) for kind in KINDS
    }


async def _postgres_rows(pool: asyncpg.Pool, made: list[Tenant]) -> None:
    """Organization, workspaces, campaigns, folders, tags, links and link tags, set-wise."""
    ids = [t.workspace_id for t in made]
    zones = [timezone_of(t.workspace_id) for t in made]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO organizations (id, name) VALUES (1, 'bench tenants')")
        await conn.execute(
            "INSERT INTO workspaces (id, organization_id, name, slug, plan, default_currency,"
            " timezone, created_at)"
            " SELECT w, 1, 'tenant ' || w, 'tenant-' || w, 'enterprise', 'USD', z,"
            " now() - interval '400 days' FROM unnest($1::bigint[], $2::text[]) AS u(w, z)",
            ids,
            zones,
        )
        for table, first, count in (
            ("campaigns", [t.first_campaign for t in made], [t.campaigns for t in made]),
            ("folders", [t.first_folder for t in made], [t.folders for t in made]),
        ):
            await conn.execute(
                f"INSERT INTO {table} (id, workspace_id, name)"
                f" SELECT f + g, w, '{table[:-1]} ' || (g + 1)"
                " FROM unnest($1::bigint[], $2::bigint[], $3::int[]) AS u(w, f, n),"
                " generate_series(0, n - 1) AS g",
                ids,
                first,
                count,
            )
        await conn.execute(
            "INSERT INTO tags (id, workspace_id, name) SELECT (w - 1) * 3 + g + 1, w, 'tag ' || g"
            " FROM unnest($1::bigint[]) AS w, generate_series(0, 2) AS g",
            ids,
        )
        # Link k of a workspace: campaign k mod (campaigns + 1) (the last value: none), folder
        # k mod (folders + 1) likewise; links with an even k carry tag k mod 3.
        await conn.execute(
            "INSERT INTO links (id, workspace_id, domain, slug, destination_url, campaign_id,"
            " folder_id)"
            " SELECT l + k, w, 'bench.lp', 't' || w || '-' || k, 'https://example.com/' || (l + k),"
            " CASE WHEN k % (c + 1) < c THEN fc + k % (c + 1) END,"
            " CASE WHEN k % (f + 1) < f THEN ff + k % (f + 1) END"
            " FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::bigint[], $5::int[],"
            " $6::bigint[], $7::int[]) AS u(w, l, n, fc, c, ff, f), generate_series(0, n - 1) k",
            ids,
            [t.first_link for t in made],
            [t.links for t in made],
            [t.first_campaign for t in made],
            [t.campaigns for t in made],
            [t.first_folder for t in made],
            [t.folders for t in made],
        )
        await conn.execute(
            "INSERT INTO link_tags (link_id, tag_id, workspace_id)"
            " SELECT id, (workspace_id - 1) * 3 + (id - l) % 3 + 1, workspace_id"
            " FROM links JOIN unnest($1::bigint[], $2::bigint[]) AS u(w, l) ON w = workspace_id"
            " WHERE (id - l) % 2 = 0",
            ids,
            [t.first_link for t in made],
        )
        for table in ("organizations", "workspaces", "campaigns", "folders", "tags", "links"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )


async def _clickhouse_rows(ch: ClickHouse, made: list[Tenant], end: int, days: int) -> None:
    """The events, generated by the server itself."""
    rows = [
        (i, ws, start, length, made[ws - 1].first_link, made[ws - 1].links,
         made[ws - 1].visitors)
        for i, (ws, start, length) in enumerate(chunks(made))
    ]  # fmt: skip
    await ch.command(
        f"CREATE TABLE {tenant_sql.CHUNKS_TABLE} (chunk UInt32, workspace_id UInt64,"
        " start UInt64, length UInt32, first_link UInt64, links UInt64, visitors UInt64)"
        " ENGINE = Memory"
    )
    try:
        await ch.insert(tenant_sql.CHUNKS_TABLE, tenant_sql.CHUNK_COLUMNS, rows)
        total = sum(t.clicks for t in made)
        began = time.monotonic()
        first = 0
        while first < len(rows):
            last, batch = first, 0
            while last < len(rows) and batch < CLICKS_PER_INSERT:
                batch += rows[last][3]
                last += 1
            await ch.command(tenant_sql.clicks_insert(end, days * 86400, first, last))
            first = last
            done = rows[last - 1][2] + rows[last - 1][3]
            rate = done / max(time.monotonic() - began, 1e-9)
            say(f"tenants: {done:,}/{total:,} clicks ({rate:,.0f}/s)")
    finally:
        await ch.command(f"DROP TABLE IF EXISTS {tenant_sql.CHUNKS_TABLE}")
    await ch.command(tenant_sql.leads_insert(end))
    say("tenants: leads inserted")
    await ch.command(tenant_sql.sales_insert())
    say("tenants: sales inserted")


async def _build(urls: Urls, params: Params) -> TenantDataset:
    urls.name()
    began = time.monotonic()
    await databases.drop_databases(urls.database_url, urls.clickhouse_url)
    await migrate(urls.database_url, urls.clickhouse_url)
    made = tenants(params.clicks, params.workspaces)
    end = int(datetime.now(UTC).timestamp())
    pool = await asyncpg.create_pool(urls.database_url, min_size=1, max_size=2)
    ch = ClickHouse.from_url(urls.clickhouse_url, pool_size=2)
    try:
        await _postgres_rows(pool, made)
        say(f"tenants: {len(made):,} workspaces, {sum(t.links for t in made):,} links in PostgreSQL"
            f" ({time.monotonic() - began:.1f} s)")  # fmt: skip
        await _clickhouse_rows(ch, made, end, params.days)
        found = await counts(ch, params.workspaces)
        if found["clicks"] != params.clicks:
            raise RuntimeError(f"generated {found['clicks']:,} clicks, not {params.clicks:,}")
        await settle(ch, "tenants")
        seconds = round(time.monotonic() - began, 1)
        meta = {"params": asdict(params), "counts": found, "end": end, "seconds": seconds}
        await pool.execute("CREATE TABLE bench_tenant_meta (meta text NOT NULL)")
        await pool.execute("INSERT INTO bench_tenant_meta VALUES ($1)", json.dumps(meta))
    finally:
        ch.close()
        await pool.close()
    say(f"tenants: built in {seconds:.0f} s: {found}")
    return TenantDataset(params, made, found, end, True, seconds)


async def ensure(urls: Urls, params: Params, fresh: bool) -> TenantDataset:
    """The dataset of params: reused when a finished build of the same params is there."""
    meta = None if fresh else await _meta(urls)
    if meta is not None and meta.get("params") == asdict(params):
        ch = ClickHouse.from_url(urls.clickhouse_url, pool_size=1)
        try:
            found = await counts(ch, params.workspaces)
            if found == meta["counts"] and await migrate(
                urls.database_url, urls.clickhouse_url
            ):  # a build may predate a migration, which leaves new parts
                await settle(ch, "tenants")
        finally:
            ch.close()
        if found == meta["counts"]:
            say(f"tenants: reusing {urls.name()} ({found}); --fresh rebuilds it")
            made = tenants(params.clicks, params.workspaces)
            return TenantDataset(
                params,
                made,
                found,
                int(meta["end"]),
                False,
                float(meta["seconds"]),  # type: ignore[arg-type]
            )
        say(f"tenants: {urls.name()} holds {found}, not {meta['counts']}; rebuilding")
    elif meta is not None:
        say(f"tenants: {urls.name()} was built with {meta.get('params')}; rebuilding")
    say(f"tenants: building {params.clicks:,} clicks over {params.workspaces:,} workspaces")
    return await _build(urls, params)


async def copy_alone(source: Urls, alone: Urls, workspace_id: int) -> dict[str, int]:
    """Recreate the alone databases holding only workspace_id's rows (same ids) of source."""
    alone.name()
    await databases.drop_databases(alone.database_url, alone.clickhouse_url)
    await migrate(alone.database_url, alone.clickhouse_url)
    src = await asyncpg.connect(source.database_url)
    dst = await asyncpg.connect(alone.database_url)
    try:
        async with dst.transaction():
            for table, where in (
                ("organizations", "id = (SELECT organization_id FROM workspaces WHERE id = $1)"),
                ("workspaces", "id = $1"),
                ("campaigns", "workspace_id = $1"),
                ("folders", "workspace_id = $1"),
                ("tags", "workspace_id = $1"),
                ("links", "workspace_id = $1"),
                ("link_tags", "workspace_id = $1"),
            ):
                rows = await src.fetch(f"SELECT * FROM {table} WHERE {where}", workspace_id)
                if rows:
                    await dst.copy_records_to_table(
                        table, records=[tuple(r) for r in rows], columns=list(rows[0].keys())
                    )
    finally:
        await src.close()
        await dst.close()
    ch = ClickHouse.from_url(alone.clickhouse_url, pool_size=1)
    try:
        for kind, columns in (
            ("clicks", tenant_sql.CLICK_COLUMNS),
            ("leads", tenant_sql.LEAD_COLUMNS),
            ("sales", tenant_sql.SALE_COLUMNS),
        ):
            names = ", ".join(columns)
            await ch.command(
                f"INSERT INTO {kind} ({names}) SELECT {names} FROM {source.name()}.{kind}"
                f" WHERE workspace_id = {int(workspace_id)}"
            )
        return await counts(ch)
    finally:
        ch.close()
