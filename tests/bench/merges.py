"""Bench datasets in steady state: every table's parts merged, as background merges leave them."""

from __future__ import annotations

from services.stores.clickhouse import ClickHouse
from tests.bench.progress import say


async def settle(ch: ClickHouse, label: str) -> None:
    """Merge every MergeTree table's parts (a fresh build or a migration leaves many small parts,
    which a small workspace's reads pay for and a system in steady state does not)."""
    rows = await ch.fetch(
        "SELECT name FROM system.tables WHERE database = currentDatabase()"
        " AND endsWith(engine, 'MergeTree') ORDER BY name"
    )
    for (table,) in rows:
        await ch.command(f"OPTIMIZE TABLE {table} FINAL")
    say(f"{label}: parts of {len(rows)} tables merged")
