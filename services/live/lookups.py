"""Point reads of ingestion in ClickHouse: stored event ids and a conversion's click.

They are reads by id for ingestion, not analytics, so they live beside it rather than in the
query engine; each starts with `workspace_id = …` like every store query.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.live.tables import TABLES
from services.stores.clickhouse import ClickHouse

_EVENT_TABLES = frozenset(t.name for t in TABLES.values())


async def existing_event_ids(
    ch: ClickHouse, kind: str, keys: Iterable[tuple[int, int]]
) -> set[tuple[int, int]]:
    """Which (workspace_id, event_id) pairs are already stored in a raw event table."""
    if kind not in _EVENT_TABLES:
        raise ValueError(f"unknown event table {kind!r}")
    wanted = set(keys)
    if not wanted:
        return set()
    workspaces = tuple(sorted({w for w, _ in wanted}))
    ids = tuple(sorted({e for _, e in wanted}))
    rows = await ch.fetch(
        f"SELECT DISTINCT workspace_id, event_id FROM {kind}"
        " WHERE workspace_id IN %(w)s AND event_id IN %(ids)s",
        {"w": workspaces, "ids": ids},
    )
    return {(int(w), int(e)) for w, e in rows} & wanted


async def click_dimensions(
    ch: ClickHouse, workspace_id: int, click_id: int, columns: tuple[str, ...]
) -> tuple[Any, ...] | None:
    """The given columns of one click of the workspace (attribution of leads and sales)."""
    rows = await ch.fetch(
        f"SELECT {', '.join(columns)} FROM clicks"
        " WHERE workspace_id = %(w)s AND event_id = %(id)s LIMIT 1",
        {"w": workspace_id, "id": click_id},
    )
    return rows[0] if rows else None


async def latest_lead(
    ch: ClickHouse, workspace_id: int, customer_id: str, columns: tuple[str, ...]
) -> tuple[Any, ...] | None:
    """click_id and the given columns of the customer's latest lead in the workspace."""
    rows = await ch.fetch(
        f"SELECT click_id, {', '.join(columns)} FROM leads"
        " WHERE workspace_id = %(w)s AND customer_id = %(c)s"
        " ORDER BY timestamp DESC, event_id DESC LIMIT 1",
        {"w": workspace_id, "c": customer_id},
    )
    return rows[0] if rows else None
