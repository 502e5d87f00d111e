"""Rows inserted through the Distributed tables land on the shard of their workspace, or of
their (workspace, event) with CLICKHOUSE_SHARDING=event, and are readable when the insert
returns (insert_distributed_sync)."""

from __future__ import annotations

from tests.services.stores.cluster_data import (
    clicks,
    insert_clicks,
    per_shard,
    replicated,
    shard_of,
)

COUNT_SQL = "SELECT count() FROM clicks WHERE workspace_id = %(w)s"


async def test_a_workspace_lands_on_one_shard(cluster_db):
    await cluster_db.migrate()
    ch, nodes = cluster_db.client(), await cluster_db.nodes()
    try:
        for workspace in (11, 12, 13, 14):
            await insert_clicks(ch, clicks(workspace, 50))
            # Synchronous: every row is queryable through the Distributed table at once.
            assert (await ch.fetch(COUNT_SQL, {"w": workspace}))[0][0] == 50
            home = await shard_of(nodes, "cityHash64(toUInt64(%(w)s))", {"w": workspace})
            counts = await per_shard(nodes, COUNT_SQL, {"w": workspace})
            assert counts == {s: (50 if s == home else 0) for s in counts}, workspace
            await replicated(nodes, COUNT_SQL, {"w": workspace})
    finally:
        ch.close()
        nodes.close()


async def test_event_sharding_spreads_a_workspace_over_every_shard(cluster_db):
    await cluster_db.migrate()
    assert await cluster_db.migrate("event") == []  # only the Distributed tables change
    ch, nodes = cluster_db.client(), await cluster_db.nodes()
    try:
        await insert_clicks(ch, clicks(21, 200))
        assert (await ch.fetch(COUNT_SQL, {"w": 21}))[0][0] == 200
        counts = await per_shard(nodes, COUNT_SQL, {"w": 21})
        assert sorted(counts) == [1, 2] and all(n > 0 for n in counts.values()), counts
        for shard in (1, 2):
            rows = await nodes.client(nodes.topology.shards()[shard - 1][0]).fetch(
                "SELECT event_id FROM clicks WHERE workspace_id = 21"
            )
            for (event_id,) in rows:
                key = "cityHash64(toUInt64(21), toUInt64(%(e)s))"
                assert await shard_of(nodes, key, {"e": event_id}) == shard
        # The rollups stay where their clicks are and merge across shards on reads.
        visitors = await ch.fetch(
            "SELECT countMerge(events), uniqCombinedMerge(12)(visitors)"
            " FROM clicks_hourly_workspace WHERE workspace_id = 21"
        )
        assert visitors == [(200, 10)]
    finally:
        ch.close()
        nodes.close()
