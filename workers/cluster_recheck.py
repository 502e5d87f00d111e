"""The flusher's recheck on a ClickHouse cluster: which events of a batch are stored already,
read on the local tables of every shard, each on a replica holding every part written to it."""

from __future__ import annotations

from collections.abc import Iterable

from services.stores.cluster import Cluster

_EVENT_TABLES = frozenset({"clicks", "leads", "sales"})


async def stored_event_ids(
    cluster: Cluster, table: str, keys: Iterable[tuple[int, int]]
) -> set[tuple[int, int]]:
    """Which (workspace_id, event_id) pairs are stored in an event table of the cluster.

    Through the Distributed table a replica that has not yet fetched a part written on its
    peer would be read, and the events of that part written again (duplicates once it does)."""
    if table not in _EVENT_TABLES:
        raise ValueError(f"unknown event table {table!r}")
    wanted = set(keys)
    if not wanted:
        return set()
    rows = await cluster.fetch_each_shard(
        f"SELECT DISTINCT workspace_id, event_id FROM {table}"
        " WHERE workspace_id IN %(w)s AND event_id IN %(ids)s",
        {"w": tuple(sorted({w for w, _ in wanted})), "ids": tuple(sorted({e for _, e in wanted}))},
        table,
    )
    return {(int(w), int(e)) for w, e in rows} & wanted
