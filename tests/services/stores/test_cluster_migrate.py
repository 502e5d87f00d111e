"""Cluster-mode migrations: local replicated tables and their views on every node, Distributed
tables over them, migrations recorded per node, a rerun applying nothing."""

from __future__ import annotations

from services.stores.cluster import local_database
from services.stores.migrate import load

ALL = sorted(f"clickhouse/{m.name}" for m in load("clickhouse"))


def _clickhouse(applied: list[str]) -> list[str]:
    return sorted(name for name in applied if name.startswith("clickhouse/"))


async def test_migrations_apply_on_every_node_and_a_rerun_applies_nothing(cluster_db):
    assert _clickhouse(await cluster_db.migrate()) == ALL
    database = cluster_db.target.database
    nodes = await cluster_db.nodes()
    try:
        assert len(nodes.topology.nodes) == 4 and nodes.topology.zookeeper
        versions = sorted(m.version for m in load("clickhouse"))
        for node in nodes.topology.nodes:
            ch = nodes.client(node)
            recorded = await ch.fetch("SELECT version FROM schema_migrations ORDER BY version")
            assert [int(r[0]) for r in recorded] == versions, node
            tables = dict(
                await ch.fetch(
                    "SELECT name, engine FROM system.tables WHERE database = %(db)s",
                    {"db": local_database(database)},
                )
            )
            assert tables["clicks"] == "ReplicatedMergeTree"
            assert tables["clicks_hourly_link"] == "ReplicatedAggregatingMergeTree"
            assert tables["sales_hourly"] == "ReplicatedSummingMergeTree"
            assert tables["clicks_hourly_link_mv"] == "MaterializedView"
            assert tables["schema_migrations"] == "MergeTree"  # per node, not replicated
            distributed = dict(
                await ch.fetch(
                    "SELECT name, engine_full FROM system.tables WHERE database = %(db)s",
                    {"db": database},
                )
            )
            local_tables = {
                name for name, engine in tables.items() if engine.endswith("MergeTree")
            } - {"schema_migrations"}
            assert set(distributed) == local_tables, node
            assert distributed["clicks"].replace(" ", "") == (
                f"Distributed({nodes.topology.cluster},{local_database(database)},clicks,"
                "cityHash64(workspace_id))"
            )
    finally:
        nodes.close()
    assert await cluster_db.migrate() == []


async def test_a_node_behind_catches_up_alone(cluster_db):
    """A node whose record and tables were lost (a replica rebuilt) is migrated on the rerun."""
    await cluster_db.migrate()
    nodes = await cluster_db.nodes()
    try:
        last = nodes.topology.nodes[-1]
        ch = nodes.client(last)
        await ch.command("DROP TABLE schema_migrations")
        await ch.command("DROP TABLE clicks_hourly_link_mv")
        await ch.command("DROP TABLE clicks_hourly_link")
        assert _clickhouse(await cluster_db.migrate()) == ALL
        tables = {r[0] for r in await ch.fetch("SHOW TABLES")}
        assert {"clicks_hourly_link", "clicks_hourly_link_mv", "schema_migrations"} <= tables
        for node in nodes.topology.nodes:
            rows = await nodes.client(node).fetch("SELECT count() FROM schema_migrations")
            assert rows[0][0] == len(load("clickhouse")), node
    finally:
        nodes.close()
    assert await cluster_db.migrate() == []
