"""Faults of the ClickHouse cluster under the whole running system (`make test-cluster`): one
replica killed, then a whole shard down. Counts are checked exactly against the client event ids
sent; answers are exact or a 503 in the envelope, never partial numbers and never a 500."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from services.devstack import clickhouse_cluster
from services.devstack.cluster_layout import ClusterLayout
from services.stores.clickhouse import ClickHouse
from tests.conftest import System, Tenant, replicas_synced
from workers.rollups import refresh_daily_aggregates

BATCH = "/api/track/batch"
OVERVIEW = "/api/analytics/workspace/overview"
TIMESERIES = "/api/analytics/workspace/timeseries"
DAY = {"start": "2026-11-02", "end": "2026-11-02", "timezone": "UTC"}
FRESH = {"Cache-Control": "no-cache"}


def _events(t: Tenant, first_id: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "linkId": t.link_ids[0],
            "eventId": str(first_id + i),
            "timestamp": f"2026-11-02T{8 + i % 12:02d}:{i % 60:02d}:00Z",
            "country": ("DE", "FR", "US")[i % 3],
        }
        for i in range(count)
    ]


async def _send(http: httpx.AsyncClient, t: Tenant, first_id: int, count: int) -> None:
    r = await http.post(BATCH, json={"events": _events(t, first_id, count)}, headers=t.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["accepted"] == count


async def _stored(ch: ClickHouse, workspace_id: int) -> tuple[int, int]:
    """(rows, distinct event ids) of the workspace's clicks, read through the cluster."""
    rows = await ch.fetch(
        "SELECT count(), uniqExact(event_id) FROM clicks WHERE workspace_id = %(w)s",
        {"w": workspace_id},
    )
    return int(rows[0][0]), int(rows[0][1])


async def _overview_clicks(http: httpx.AsyncClient, t: Tenant) -> int:
    r = await http.get(OVERVIEW, params=DAY, headers={**t.headers, **FRESH})
    assert r.status_code == 200, r.text
    return int(r.json()["data"]["totals"]["clicks"])


async def _shard_of(ch: ClickHouse, workspace_id: int) -> int:
    """The shard (1-based) the Distributed tables put the workspace's events on."""
    rows = await ch.fetch(
        "SELECT shard_num FROM system.clusters WHERE cluster = %(c)s AND replica_num = 1"
        " ORDER BY shard_num",
        {"c": ch.target.cluster},
    )
    shards = [int(r[0]) for r in rows]
    found = await ch.fetch(
        "SELECT cityHash64(toUInt64(%(w)s)) %% %(n)s", {"w": workspace_id, "n": len(shards)}
    )
    return shards[int(found[0][0])]


def _kill(layout: ClusterLayout, name: str, stopped: list[str]) -> None:
    """SIGKILL one node of the cluster this checkout started (noted for the restart)."""
    state = clickhouse_cluster.stop_node(layout, name, kill=True)
    assert state.state == "killed", (
        f"cluster node {name} was not started from {layout.root} (another checkout's?): stop that"
        " cluster (`linkpulse stack clickhouse --cluster --stop` there) and run again"
    )
    stopped.append(name)


@pytest.fixture
def nodes(cluster_layout: ClusterLayout) -> Iterator[list[str]]:
    """Nodes a test stopped (started again afterwards, whatever happened)."""
    stopped: list[str] = []
    yield stopped
    for name in stopped:
        clickhouse_cluster.start_node(cluster_layout, name)


async def test_a_replica_down_reads_and_ingest_go_on_exactly(
    system: System,
    http: httpx.AsyncClient,
    ch: ClickHouse,
    tenant: Any,
    cluster_layout: ClusterLayout,
    nodes: list[str],
) -> None:
    t = await tenant(links_count=1)
    await _send(http, t, 1_000, 40)
    assert await _overview_clicks(http, t) == 40
    # The first node of CLICKHOUSE_URL, replica 1 of its shard: clients fail over to another
    # entry node and the Distributed tables to the shard's other replica.
    victim = cluster_layout.nodes[0].name
    _kill(cluster_layout, victim, nodes)
    await _send(http, t, 2_000, 40)
    await _send(http, t, 2_000, 40)  # a resend: counted once
    assert await _overview_clicks(http, t) == 80
    assert await _stored(ch, t.workspace_id) == (80, 80)
    clickhouse_cluster.start_node(cluster_layout, victim)
    nodes.remove(victim)
    await replicas_synced(ch.target)  # the rejoined replica catches up
    assert await _stored(ch, t.workspace_id) == (80, 80)
    assert await _overview_clicks(http, t) == 80


async def test_a_shard_down_is_a_503_and_ingest_waits_in_redis(
    system: System,
    pg: asyncpg.Pool,
    ch: ClickHouse,
    tenant: Any,
    cluster_layout: ClusterLayout,
    nodes: list[str],
) -> None:
    t = await tenant(links_count=1)
    # Not the suite's `http`: its hook waits for the flusher after every tracked batch.
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as http:
        await _send(http, t, 1_000, 30)
        await system.drained()
        # The daily aggregates the PostgreSQL fallback answers from (the worker's job).
        refreshed = await refresh_daily_aggregates({"pg": pg, "ch": ch}, [t.workspace_id])
        assert t.workspace_id in refreshed["refreshed"], refreshed
        shard = await _shard_of(ch, t.workspace_id)
        for node in cluster_layout.shard_nodes(shard):
            _kill(cluster_layout, node.name, nodes)
        # Hourly buckets have no PostgreSQL fallback: a 503 in the envelope, never partial.
        r = await http.get(
            TIMESERIES, params={**DAY, "granularity": "hour"}, headers={**t.headers, **FRESH}
        )
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["success"] is False and "ClickHouse" in body["error"]["message"]
        # Whole days: the fallback answers, from the aggregates, with the exact count.
        r = await http.get(OVERVIEW, params=DAY, headers={**t.headers, **FRESH})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["meta"]["source"] == "aggregates" and data["totals"]["clicks"] == 30
        # Accepted while the shard is down, kept in Redis, and resent by an impatient client.
        await _send(http, t, 2_000, 30)
        await _send(http, t, 2_000, 30)
        await asyncio.sleep(2)  # the flushers try and fail meanwhile
        for node in cluster_layout.shard_nodes(shard):
            clickhouse_cluster.start_node(cluster_layout, node.name)
            nodes.remove(node.name)
        await system.drained(120)  # and every replica has caught up
        assert await _stored(ch, t.workspace_id) == (60, 60)
        assert await _overview_clicks(http, t) == 60
