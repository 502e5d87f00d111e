"""Visitor ids hashed once per event, LowCardinality dimensions, and clicks rollups whose visitor
sketches merge fast: hourly, per workspace and per link, with uniqCombined(12) states.

Idempotent on every step, so a crash midway is safe to rerun: columns are added and converted
only where system.columns shows the old shape, and the rollups are rebuilt from scratch (view
dropped, table dropped, both created, events stored before the view backfilled), which is what
a rerun after a crash does too. Runs on 18.16 (LowCardinality needs a setting there) and on
current ClickHouse (which rejects that setting).
"""

from __future__ import annotations

import asyncio

from services.stores.clickhouse import ClickHouse, settings_for

EVENT_TABLES = ("clicks", "leads", "sales")
VISITOR_HASH = "visitor_hash UInt64 MATERIALIZED cityHash64(visitor_id)"
DIMENSIONS = ("country", "region", "city", "continent", "device", "browser", "os", "referrer",
              "trigger")  # fmt: skip
LOW_CARDINALITY = {
    "clicks": (*DIMENSIONS, "destination_url"),
    "leads": DIMENSIONS,
    "sales": DIMENSIONS,
}
SKETCH = "uniqCombined(12)"
# Rows per mark of the rollups: a state is up to ~3 KB, and a read decompresses whole granules,
# so one link's or one small workspace's hours should not drag 8,192 other states along.
ROLLUP_GRANULARITY = 256

# Clicks one backfill statement aggregates at most, and past what its states spill to disk
# instead of failing on the server's memory limit.
BACKFILL_ROWS = 4_000_000
BACKFILL_SETTINGS = {"max_bytes_before_external_group_by": 1_000_000_000}

# (rollup table, its materialized view, its key columns besides hour and is_bot)
ROLLUPS = (
    ("clicks_hourly_workspace", "clicks_hourly_workspace_mv", ()),
    ("clicks_hourly_link", "clicks_hourly_link_mv", ("link_id",)),
)
# The per-link rollup of migration 0002, whose exact-ish uniq states of the String id merge as
# slowly as scanning; replaced by the two above.
RETIRED = ("clicks_hourly_mv", "clicks_hourly")


async def _columns(ch: ClickHouse, table: str) -> dict[str, str]:
    rows = await ch.fetch(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase()"
        " AND table = %(table)s",
        {"table": table},
    )
    return {str(name): str(kind) for name, kind in rows}


async def _convert_events(ch: ClickHouse, settings: dict[str, object]) -> None:
    """visitor_hash added and dimensions made LowCardinality where not yet done."""
    for table in EVENT_TABLES:
        columns = await _columns(ch, table)
        changes = [] if "visitor_hash" in columns else [f"ADD COLUMN {VISITOR_HASH}"]
        changes += [
            f"MODIFY COLUMN {name} LowCardinality(String)"
            for name in LOW_CARDINALITY[table]
            if columns.get(name) == "String"
        ]
        if not changes:
            continue
        await ch.command(f"ALTER TABLE {table} {', '.join(changes)}", settings)
        # Parts written before the ALTER compute visitor_hash on every read; rewriting them
        # stores it (a merge would, some day).
        await ch.command(f"OPTIMIZE TABLE {table} FINAL", settings)


async def _rebuild_rollup(ch: ClickHouse, table: str, view: str, keys: tuple[str, ...]) -> None:
    grouping = ", ".join(("workspace_id", *keys, "hour", "is_bot"))
    key_columns = "".join(f"{key} UInt64, " for key in keys)
    select = (
        f"SELECT workspace_id, {''.join(f'{key}, ' for key in keys)}"
        "toStartOfHour(timestamp) AS hour, is_bot, countState() AS events,"
        f" {SKETCH.replace('(', 'State(', 1)}(cityHash64(visitor_id)) AS visitors FROM clicks"
    )
    await ch.command(f"DROP TABLE IF EXISTS {view}")
    await ch.command(f"DROP TABLE IF EXISTS {table}")
    await ch.command(
        f"CREATE TABLE {table} (workspace_id UInt64, {key_columns}hour DateTime, is_bot UInt8,"
        f" events AggregateFunction(count), visitors AggregateFunction({SKETCH}, UInt64))"
        f" ENGINE = AggregatingMergeTree() PARTITION BY toYYYYMM(hour) ORDER BY ({grouping})"
        f" SETTINGS index_granularity = {ROLLUP_GRANULARITY}"
    )
    # The view is created in a second no event stored before it shares: the backfill takes
    # events whose inserted_at (set by the server) is before that second, the view the rest.
    await _next_second(ch)
    await ch.command(f"CREATE MATERIALIZED VIEW {view} TO {table} AS {select} GROUP BY {grouping}")
    # One statement over tens of millions of clicks holds millions of states at once and runs
    # out of memory: a slice of the workspaces of one month at a time.
    before_view = (
        "inserted_at < (SELECT min(metadata_modification_time) FROM system.tables"
        f" WHERE database = currentDatabase() AND name = '{view}')"
    )
    for month, slices in await _backfill_slices(ch):
        for part in range(slices):
            await ch.command(
                f"INSERT INTO {table} {select} WHERE toYYYYMM(timestamp) = {month}"
                f" AND workspace_id % {slices} = {part} AND {before_view} GROUP BY {grouping}",
                BACKFILL_SETTINGS,
            )


async def _backfill_slices(ch: ClickHouse) -> list[tuple[int, int]]:
    """(month, slices of its workspaces) of the clicks stored, BACKFILL_ROWS clicks a slice."""
    rows = await ch.fetch(
        "SELECT toYYYYMM(timestamp) AS month, count() FROM clicks GROUP BY month ORDER BY month"
    )
    return [(int(month), max(1, -(-int(n) // BACKFILL_ROWS))) for month, n in rows]


async def _next_second(ch: ClickHouse) -> None:
    """Return once the server's clock has moved on to a new second."""
    started = await ch.fetch("SELECT now()")
    for _ in range(100):  # a second and then some, however the polls fall
        await asyncio.sleep(0.05)
        if await ch.fetch("SELECT now()") != started:
            return


async def apply(ch: ClickHouse) -> None:
    """Convert the event tables and rebuild the clicks rollups."""
    settings = settings_for(await ch.server_version())
    await _convert_events(ch, settings)
    for table, view, keys in ROLLUPS:
        await _rebuild_rollup(ch, table, view, keys)
    for name in RETIRED:
        await ch.command(f"DROP TABLE IF EXISTS {name}")
