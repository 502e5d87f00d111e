"""What cluster mode derives without a cluster: replicated engines, sharding keys, Distributed
columns, the ZooKeeper probe, failover hosts from CLICKHOUSE_URL."""

from __future__ import annotations

import pytest

from services.config import Settings
from services.stores import cluster as cluster_mod
from services.stores.clickhouse import ClickHouse, ClickHouseTarget
from services.stores.cluster_migrate import distributed_columns, replicated
from tests.ports import free_port


def test_plain_merge_tree_engines_become_replicated():
    sql = "CREATE TABLE IF NOT EXISTS clicks (a UInt8) ENGINE = MergeTree()\nORDER BY a"
    assert replicated(sql, "lp") == (
        "CREATE TABLE IF NOT EXISTS clicks (a UInt8) ENGINE = ReplicatedMergeTree("
        "'/clickhouse/tables/{shard}/lp/clicks', '{replica}')\nORDER BY a"
    )
    sql = "CREATE TABLE t (a UInt8) ENGINE = AggregatingMergeTree() ORDER BY a"
    assert "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/lp/t'" in replicated(
        sql, "lp"
    )
    for untouched in (
        "CREATE MATERIALIZED VIEW v TO t AS SELECT a FROM clicks",
        "INSERT INTO t SELECT a FROM clicks",
        replicated(sql, "lp"),
    ):
        assert replicated(untouched, "lp") == untouched


def test_sharding_keys():
    assert cluster_mod.sharding_key("workspace", ["event_id", "workspace_id"]) == (
        "cityHash64(workspace_id)"
    )
    assert cluster_mod.sharding_key("event", ["event_id", "workspace_id"]) == (
        "cityHash64(workspace_id, event_id)"
    )
    assert cluster_mod.sharding_key("event", ["hour", "workspace_id"]) == (
        "cityHash64(workspace_id)"
    )


def test_materialized_columns_are_aliases_in_distributed_tables():
    local = [
        ("visitor_id", "String", "", ""),
        ("visitor_hash", "UInt64", "MATERIALIZED", "cityHash64(visitor_id)"),
        ("inserted_at", "DateTime", "DEFAULT", "now()"),
    ]
    assert distributed_columns(local) == [
        ("visitor_id", "String", "", ""),
        ("visitor_hash", "UInt64", "ALIAS", "cityHash64(visitor_id)"),
        ("inserted_at", "DateTime", "DEFAULT", "now()"),
    ]


def test_sharding_is_validated():
    assert Settings(clickhouse_sharding="event").clickhouse_sharding == "event"
    with pytest.raises(ValueError, match="CLICKHOUSE_SHARDING"):
        Settings(clickhouse_sharding="link")


def test_alt_hosts_come_from_the_url():
    target = ClickHouseTarget.from_url(
        "clickhouse://u:p@10.0.0.1:9001/lp?alt_hosts=10.0.0.2:9002,10.0.0.3", "c"
    )
    assert target.hosts == (("10.0.0.1", 9001), ("10.0.0.2", 9002), ("10.0.0.3", 9000))
    assert target.database == "lp" and target.cluster == "c"
    starts = {ClickHouse(target, pool_size=1).target.host for _ in range(60)}
    assert starts == {"10.0.0.1", "10.0.0.2", "10.0.0.3"}  # each process starts anywhere


async def test_a_server_without_zookeeper_says_so(system):
    ch = ClickHouse.from_url(system.settings.clickhouse_url, pool_size=1)
    try:
        assert await cluster_mod._has_zookeeper(ch) is False
    finally:
        ch.close()


async def test_failover_to_the_next_host(system):
    target = ClickHouseTarget.from_url(system.settings.clickhouse_url)
    dead = f"127.0.0.1:{free_port()}"
    url = system.settings.clickhouse_url.replace(f"{target.host}:{target.port}", dead, 1)
    ch = ClickHouse(ClickHouseTarget.from_url(f"{url}?alt_hosts={target.host}:{target.port}"))
    try:
        for _ in range(3):
            assert await ch.fetch("SELECT 1") == [(1,)]
    finally:
        ch.close()
