"""The cluster section's data: the dev cluster ensured, and a single-node bench database copied
into a database of its own on the cluster (Distributed tables over replicated local ones).

The copy runs on a cluster node: `INSERT INTO <cluster db>.<table> (columns) SELECT columns FROM
remote('<single node>', <db>, <table>)` through the Distributed table, for the event tables only
(the rollups fill through their materialized views on every shard, as on the single node). The
rows are the same, so every answer must be the same; the sharding key decides where they land.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from urllib.parse import urlsplit, urlunsplit

from services.config import ROOT, Settings
from services.devstack.clickhouse_cluster import ensure_cluster
from services.devstack.cluster_layout import ClusterLayout
from services.stores.clickhouse import ClickHouse, ClickHouseTarget
from services.stores.cluster import Cluster, drop_databases
from services.stores.migrate import migrate
from tests.bench.options import DATABASE, RESERVED
from tests.bench.progress import say

# The event tables; every other table is a rollup their materialized views fill.
EVENT_TABLES = ("clicks", "leads", "sales")


@dataclass(frozen=True)
class ClusterCopy:
    """A bench database copied onto the cluster: where, how sharded, and its row counts."""

    layout: ClusterLayout
    sharding: str
    counts: dict[str, int]
    seconds: float

    @property
    def database(self) -> str:
        """The database of the Distributed tables."""
        return self.layout.database

    def env(self) -> dict[str, str]:
        """Settings under which a linkpulse process reads and writes this copy."""
        return {**self.layout.env(), "CLICKHOUSE_SHARDING": self.sharding}


def layout(settings: Settings, database: str) -> ClusterLayout:
    """The dev cluster (ports 9101.. unless CLICKHOUSE_CLUSTER_PORT_BASE says otherwise, data
    under the repository's .run) with database as the Distributed tables' database."""
    if not database.startswith(DATABASE) or database in RESERVED:  # only the bench's own
        raise RuntimeError(f"refusing to use cluster database {database!r}")
    parts = urlsplit(settings.clickhouse_url)
    url = urlunsplit(parts._replace(path=f"/{database}", query=""))
    return ClusterLayout.from_settings(
        replace(settings, run_dir=ROOT / ".run", clickhouse_url=url, clickhouse_cluster="")
    )


async def ensure_running(cluster: ClusterLayout) -> None:
    """ZooKeeper and every node answering (running ones reused, the rest started)."""
    state = await asyncio.to_thread(ensure_cluster, cluster)
    nodes = ", ".join(f"{n.name} {n.state}" for n in state.nodes)
    say(f"cluster: {cluster.name} on ports {cluster.port_base + 1}..: {nodes}")


def _target(cluster: ClusterLayout) -> ClickHouseTarget:
    return ClickHouseTarget.from_url(cluster.url(), cluster.name)


async def _columns(source: ClickHouse, database: str, table: str) -> list[str]:
    """The columns an INSERT may name (not MATERIALIZED or ALIAS ones)."""
    rows = await source.fetch(
        "SELECT name FROM system.columns WHERE database = %(db)s AND table = %(t)s"
        " AND default_kind NOT IN ('MATERIALIZED', 'ALIAS')",
        {"db": database, "t": table},
    )
    return [str(name) for (name,) in rows]


async def _count(ch: ClickHouse, table: str) -> int:
    return int((await ch.fetch(f"SELECT count() FROM {table}"))[0][0])


async def _settle(cluster: Cluster) -> None:
    """Merge the local tables' parts on each copy, as the single-node dataset's are (only tables
    holding parts there: 18.16 fails an OPTIMIZE of an empty replicated table)."""
    for group in cluster.topology.writer_groups():
        ch = cluster.client(group[0])
        rows = await ch.fetch(
            "SELECT DISTINCT table FROM system.parts WHERE active AND database = currentDatabase()"
            " ORDER BY table"
        )
        for (table,) in rows:
            await ch.command(f"OPTIMIZE TABLE {table} FINAL")


async def copy(
    cluster: ClusterLayout, sharding: str, database_url: str, source_url: str
) -> ClusterCopy:
    """Recreate the cluster database (migrated with the sharding key), copy the event tables of
    the single-node database source_url into it and wait for every replica."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    target = _target(cluster)
    await drop_databases(target)
    await migrate(database_url, cluster.url(), cluster.name, sharding)
    source_target = ClickHouseTarget.from_url(source_url)
    source = ClickHouse(source_target, pool_size=1)
    ch = ClickHouse(target, pool_size=1)
    counts: dict[str, int] = {}
    try:
        for table in EVENT_TABLES:
            columns = ", ".join(await _columns(source, source_target.database, table))
            remote = f"remote('{source_target.host}:{source_target.port}'"
            remote += f", {source_target.database}, {table})"
            await ch.command(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {remote}")
            counts[table] = await _count(ch, table)
            expected = await _count(source, table)
            if counts[table] != expected:
                raise RuntimeError(f"cluster copy of {table}: {counts[table]:,} of {expected:,}")
        topology = await Cluster.open(target)
        try:
            await topology.sync_replicas()
            await _settle(topology)
            await topology.sync_replicas()
        finally:
            topology.close()
    finally:
        ch.close()
        source.close()
    seconds = loop.time() - began
    say(f"cluster: {source_target.database} copied into {cluster.database} ({sharding} sharding)"
        f" in {seconds:.0f} s: {counts}")  # fmt: skip
    return ClusterCopy(cluster, sharding, counts, seconds)
