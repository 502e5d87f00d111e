"""Clicks to insert in the cluster tests, and where they are stored, node by node."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from services.live.tables import CLICK_COLUMNS
from services.stores.clickhouse import ClickHouse
from services.stores.cluster import Cluster, Node

START = datetime(2026, 5, 4, tzinfo=UTC)


def clicks(workspace_id: int, count: int, first_event: int = 1) -> list[tuple[Any, ...]]:
    """count clicks of the workspace (two links, ten visitors), event ids from first_event."""
    rows = []
    for i in range(count):
        values: dict[str, Any] = {name: "" for name in CLICK_COLUMNS}
        values.update(
            event_id=first_event + i,
            workspace_id=workspace_id,
            link_id=1 + i % 2,
            timestamp=START + timedelta(minutes=i),
            visitor_id=f"visitor-{i % 10}",
            country=("DE", "US", "FR")[i % 3],
            rule_id=0,
            condition_id=0,
            is_bot=0,
        )
        rows.append(tuple(values[name] for name in CLICK_COLUMNS))
    return rows


async def insert_clicks(ch: ClickHouse, rows: list[tuple[Any, ...]]) -> None:
    """Insert clicks through the Distributed table."""
    await ch.insert("clicks", CLICK_COLUMNS, rows)


async def shard_of(cluster: Cluster, key: str, params: dict[str, Any]) -> int:
    """The shard (1-based) a Distributed table of two equal shards sends a key's rows to."""
    rows = await cluster.client(cluster.topology.nodes[0]).fetch(f"SELECT modulo({key}, 2)", params)
    return int(rows[0][0]) + 1


async def per_replica(cluster: Cluster, sql: str, params: dict[str, Any]) -> dict[Node, Any]:
    """A one-value SELECT of the local tables on every node."""
    return {
        node: (await cluster.client(node).fetch(sql, params))[0][0]
        for node in cluster.topology.nodes
    }


async def per_shard(cluster: Cluster, sql: str, params: dict[str, Any]) -> dict[int, Any]:
    """A count of the local tables per shard: the most any of its replicas holds (an insert
    lands on one replica; the other fetches it a moment later)."""
    found: dict[int, Any] = {}
    for node, value in (await per_replica(cluster, sql, params)).items():
        found[node.shard] = max(found.get(node.shard, value), value)
    return found


async def replicated(
    cluster: Cluster, sql: str, params: dict[str, Any], seconds: float = 30
) -> None:
    """Wait until every replica of each shard answers a count the same."""
    deadline = time.monotonic() + seconds
    while True:
        values = await per_replica(cluster, sql, params)
        shards = {node.shard for node in values}
        if all(len({v for n, v in values.items() if n.shard == s}) == 1 for s in shards):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"replicas differ after {seconds}s: {values}")
        await asyncio.sleep(0.1)
