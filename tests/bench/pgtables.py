"""The PostgreSQL baseline: plain bench_clicks/leads/sales tables copied from ClickHouse.

The tables have the ClickHouse tables' columns (but `inserted_at`) with the obvious PostgreSQL
types and the indexes a user would add for these queries: (workspace_id, timestamp) and link_id.
`bench_meta` records a finished copy, so a re-run over the same dataset skips it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.stores.clickhouse import ClickHouse
from tests.bench.dataset import KINDS, Dataset
from tests.bench.progress import say

CHUNK_ROWS = 50_000
BLOCK_ROWS = 65_536
TYPES = {
    "UInt8": "smallint",
    "UInt16": "integer",
    "UInt32": "bigint",
    "UInt64": "bigint",
    "Int64": "bigint",
    "Float64": "double precision",
    "String": "text",
    "LowCardinality(String)": "text",
    "DateTime": "timestamptz",
}
# visitor_hash is ClickHouse's own (the baseline counts distinct visitor_id) and a UInt64 past
# PostgreSQL's bigint.
SKIPPED = {"inserted_at", "visitor_hash"}


def table(kind: str) -> str:
    """The PostgreSQL baseline table of an event kind."""
    return f"bench_{kind}"


async def _columns(ch: ClickHouse, kind: str) -> list[tuple[str, str]]:
    rows = await ch.fetch(f"DESCRIBE TABLE {kind}")
    return [(str(row[0]), str(row[1])) for row in rows if row[0] not in SKIPPED]


async def is_current(pool: asyncpg.Pool, dataset: Dataset) -> bool:
    """True when the baseline tables hold exactly the dataset's events."""
    try:
        rows = await pool.fetch("SELECT kind, workspace_id, events FROM bench_meta")
    except asyncpg.UndefinedTableError:
        return False
    found = {r["kind"]: (r["workspace_id"], r["events"]) for r in rows}
    return all(found.get(kind) == (dataset.workspace_id, dataset.counts[kind]) for kind in KINDS)


def _chunks(
    ch: ClickHouse, kind: str, columns: list[tuple[str, str]], workspace_id: int
) -> Iterator[list[tuple[Any, ...]]]:
    """Rows of one kind in chunks of CHUNK_ROWS, DateTime columns as aware UTC datetimes."""
    times = [i for i, (_, ch_type) in enumerate(columns) if ch_type == "DateTime"]
    select = ", ".join(
        f"toUInt32({name})" if ch_type == "DateTime" else name for name, ch_type in columns
    )
    client = ch.target.client()
    try:
        rows = client.execute_iter(
            f"SELECT {select} FROM {kind} WHERE workspace_id = %(ws)s",
            {"ws": workspace_id},
            settings={"max_block_size": BLOCK_ROWS},
        )
        chunk: list[tuple[Any, ...]] = []
        for row in rows:
            if times:
                values = list(row)
                for i in times:
                    values[i] = datetime.fromtimestamp(values[i], UTC)
                row = tuple(values)
            chunk.append(row)
            if len(chunk) >= CHUNK_ROWS:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
    finally:
        client.disconnect()


async def _copy(
    pool: asyncpg.Pool, ch: ClickHouse, kind: str, workspace_id: int, expected: int
) -> None:
    columns = await _columns(ch, kind)
    name = table(kind)
    ddl = ", ".join(f'"{column}" {TYPES[ch_type]} NOT NULL' for column, ch_type in columns)
    names = [column for column, _ in columns]
    began = time.monotonic()
    async with pool.acquire() as conn:
        await conn.execute(f"DROP TABLE IF EXISTS {name}")
        await conn.execute(f"CREATE TABLE {name} ({ddl})")
        chunks = _chunks(ch, kind, columns, workspace_id)
        copied = 0
        # The next chunk is read from ClickHouse (in a thread) while this one is copied.
        pending = asyncio.create_task(asyncio.to_thread(next, chunks, None))
        while (chunk := await pending) is not None:
            pending = asyncio.create_task(asyncio.to_thread(next, chunks, None))
            await conn.copy_records_to_table(name, records=chunk, columns=names)
            copied += len(chunk)
            if copied % (CHUNK_ROWS * 20) < CHUNK_ROWS or copied == expected:
                rate = copied / max(time.monotonic() - began, 1e-9)
                say(f"postgres baseline: {name} {copied:,}/{expected:,} rows ({rate:,.0f}/s)")
        say(f"postgres baseline: indexing and analyzing {name}")
        await conn.execute(f"CREATE INDEX {name}_ws_time ON {name} (workspace_id, timestamp)")
        await conn.execute(f"CREATE INDEX {name}_link ON {name} (link_id)")
        await conn.execute(f"ANALYZE {name}")
        found = await conn.fetchval(f"SELECT count(*) FROM {name}")
    if found != expected:
        raise RuntimeError(f"{name} has {found} rows after the copy, ClickHouse has {expected}")
    say(f"postgres baseline: {name} ready in {time.monotonic() - began:.0f} s")


async def ensure(pool: asyncpg.Pool, ch: ClickHouse, dataset: Dataset) -> None:
    """Copy the dataset into the baseline tables unless they already hold it."""
    if not dataset.built and await is_current(pool, dataset):
        say("postgres baseline: tables are current")
        return
    await pool.execute("DROP TABLE IF EXISTS bench_meta")
    for kind in KINDS:
        await _copy(pool, ch, kind, dataset.workspace_id, dataset.counts[kind])
    await pool.execute(
        "CREATE TABLE bench_meta (kind text PRIMARY KEY, workspace_id bigint NOT NULL,"
        " events bigint NOT NULL, copied_at timestamptz NOT NULL DEFAULT now())"
    )
    await pool.executemany(
        "INSERT INTO bench_meta (kind, workspace_id, events) VALUES ($1, $2, $3)",
        [(kind, dataset.workspace_id, dataset.counts[kind]) for kind in KINDS],
    )
