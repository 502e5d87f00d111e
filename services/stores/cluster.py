"""A ClickHouse cluster's topology (nodes, shards, replicas, ZooKeeper) and statements run on
its nodes directly: what migrations and every deleter use, since a Distributed table neither
alters, optimizes nor truncates the tables under it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from clickhouse_driver import errors as ch_errors

from services.errors import StoreUnavailable
from services.stores.clickhouse import ClickHouse, ClickHouseTarget

NO_ZOOKEEPER = ch_errors.ErrorCodes.NO_ZOOKEEPER

# Suffix of the database on every node that holds the local tables under the Distributed ones.
LOCAL_SUFFIX = "_shard"

# Distributed sharding keys by CLICKHOUSE_SHARDING; tables without event_id use the first.
SHARDING_KEYS = {
    "workspace": "cityHash64(workspace_id)",
    "event": "cityHash64(workspace_id, event_id)",
}


def local_database(database: str) -> str:
    """The database of the local tables under the Distributed tables of database."""
    return f"{database}{LOCAL_SUFFIX}"


def sharding_key(sharding: str, columns: Iterable[str]) -> str:
    """The Distributed sharding key of a table with these columns."""
    names = set(columns)
    if "workspace_id" not in names:
        return "rand()"
    if sharding == "event" and "event_id" in names:
        return SHARDING_KEYS["event"]
    return SHARDING_KEYS["workspace"]


@dataclass(frozen=True)
class Node:
    """One ClickHouse server of the cluster."""

    host: str
    port: int
    shard: int
    replica: int

    @property
    def name(self) -> str:
        """host:port."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Topology:
    """The nodes of a cluster as the entry node sees them, and whether ZooKeeper is there."""

    cluster: str
    nodes: tuple[Node, ...]
    zookeeper: bool

    def shards(self) -> list[tuple[Node, ...]]:
        """The replicas of each shard, shards and replicas in order."""
        numbers = sorted({n.shard for n in self.nodes})
        return [
            tuple(sorted((n for n in self.nodes if n.shard == s), key=lambda n: n.replica))
            for s in numbers
        ]

    def writer_groups(self) -> list[tuple[Node, ...]]:
        """Nodes that share their data: the replicas of a shard when ZooKeeper replicates
        between them, else every node alone (plain tables are not replicated)."""
        if self.zookeeper:
            return self.shards()
        return [(n,) for n in sorted(self.nodes, key=lambda n: (n.shard, n.replica))]


async def discover(target: ClickHouseTarget) -> Topology:
    """The topology of target.cluster read from system.clusters on an entry node."""
    entry = ClickHouse(replace(target, database="default"), pool_size=1)
    try:
        rows = await entry.fetch(
            "SELECT host_address, port, shard_num, replica_num FROM system.clusters"
            " WHERE cluster = %(cluster)s ORDER BY shard_num, replica_num",
            {"cluster": target.cluster},
        )
        if not rows:
            raise ValueError(f"ClickHouse knows no cluster named {target.cluster!r}")
        return Topology(
            cluster=target.cluster,
            nodes=tuple(Node(str(h), int(p), int(s), int(r)) for h, p, s, r in rows),
            zookeeper=await _has_zookeeper(entry),
        )
    finally:
        entry.close()


async def _has_zookeeper(ch: ClickHouse) -> bool:
    # 18.16 has no system.zookeeper table without a <zookeeper> section; newer servers have
    # one that answers NO_ZOOKEEPER.
    found = await ch.fetch(
        "SELECT count() FROM system.tables WHERE database = 'system' AND name = 'zookeeper'"
    )
    if not found[0][0]:
        return False
    try:
        await ch.fetch("SELECT count() FROM system.zookeeper WHERE path = '/'")
    except StoreUnavailable as exc:
        cause = exc.__cause__
        if isinstance(cause, ch_errors.ServerException) and cause.code == NO_ZOOKEEPER:
            return False
        return True  # configured but not answering: the replicated tables still need it
    return True


@dataclass
class Cluster:
    """A cluster's topology plus one client per node, on the local database by default."""

    target: ClickHouseTarget
    topology: Topology
    _clients: dict[tuple[Node, str], ClickHouse] = field(default_factory=dict)

    @classmethod
    async def open(cls, target: ClickHouseTarget) -> Cluster:
        """The cluster target names (target.cluster must be set)."""
        if not target.cluster:
            raise ValueError("not a cluster target (CLICKHOUSE_CLUSTER is empty)")
        return cls(target, await discover(target))

    @property
    def database(self) -> str:
        """The database of the Distributed tables."""
        return self.target.database

    @property
    def local_database(self) -> str:
        """The database of the local tables, on every node."""
        return local_database(self.target.database)

    def client(self, node: Node, database: str | None = None) -> ClickHouse:
        """A client of one node (on the local database unless another is named)."""
        name = self.local_database if database is None else database
        key = (node, name)
        if key not in self._clients:
            self._clients[key] = ClickHouse(self.target.on(node.host, node.port, name), 1)
        return self._clients[key]

    async def on_every_node(
        self, sql: str, database: str | None = None, settings: dict[str, Any] | None = None
    ) -> None:
        """Run a statement on every node, one after the other (all must answer)."""
        for node in self.topology.nodes:
            await self.client(node, database).command(sql, settings)

    async def on_each_copy(
        self, sql: str, database: str | None = None, settings: dict[str, Any] | None = None
    ) -> None:
        """Run a statement that writes data once per copy of the data: on one replica of each
        shard when ZooKeeper replicates it (the first that answers), else on every node."""
        for group in self.topology.writer_groups():
            await first_answering(group, lambda n: self.client(n, database).command(sql, settings))

    async def fetch_every_node(
        self, sql: str, params: dict[str, Any] | None = None, database: str | None = None
    ) -> list[tuple[Any, ...]]:
        """The rows of a SELECT run on every node, concatenated (all must answer)."""
        rows: list[tuple[Any, ...]] = []
        for node in self.topology.nodes:
            rows += await self.client(node, database).fetch(sql, params)
        return rows

    async def fetch_each_shard(
        self, sql: str, params: dict[str, Any], table: str
    ) -> list[tuple[Any, ...]]:
        """The rows of a SELECT of the local tables run once per copy of the data, each time on
        a replica that holds every part committed to its shard's `table` (rows written to one
        replica and not yet fetched by the other are seen); StoreUnavailable when a shard has
        no such replica answering."""
        rows: list[tuple[Any, ...]] = []
        for group in self.topology.writer_groups():
            if not self.topology.zookeeper:
                rows += await self.client(group[0]).fetch(sql, params)
                continue
            rows += await first_answering(
                group, lambda n: self._complete_fetch(n, sql, params, table)
            )
        return rows

    async def _complete_fetch(
        self, node: Node, sql: str, params: dict[str, Any], table: str
    ) -> list[tuple[Any, ...]]:
        ch = self.client(node)
        behind = await replica_lag(ch, self.local_database, table)
        if behind:
            raise StoreUnavailable(f"replica {node.name} of shard {node.shard} is {behind}")
        return await ch.fetch(sql, params)

    async def sync_replicas(self) -> None:
        """Wait until every replica holds every part committed to its shard so far: replication
        is asynchronous, so a read through another replica may otherwise miss the newest rows
        for a moment."""
        for node in self.topology.nodes:
            await self.sync_replica(node)

    async def sync_replica(self, node: Node) -> None:
        """Wait until node holds every part committed to its shard so far (SYSTEM SYNC REPLICA
        of each of its replicated tables)."""
        if not self.topology.zookeeper:
            return
        ch = self.client(node)
        tables = await ch.fetch(
            "SELECT table FROM system.replicas WHERE database = %(db)s",
            {"db": self.local_database},
        )
        for (table,) in tables:
            await ch.command(f"SYSTEM SYNC REPLICA {self.local_database}.{table}")

    def close(self) -> None:
        """Disconnect every node's client."""
        for ch in self._clients.values():
            ch.close()
        self._clients.clear()


async def on_stored_data(ch: ClickHouse, sql: str, settings: dict[str, Any] | None = None) -> None:
    """Run a statement that changes stored rows (ALTER … DELETE, OPTIMIZE, TRUNCATE) on ch's
    server, or on a cluster on the local tables of each copy of the data (a Distributed table
    refuses or ignores them)."""
    if not ch.target.cluster:
        await ch.command(sql, settings)
        return
    cluster = await Cluster.open(ch.target)
    try:
        await cluster.on_each_copy(sql, settings=settings)
    finally:
        cluster.close()


async def drop_databases(target: ClickHouseTarget) -> None:
    """Drop target's database, and on a cluster that of its local tables, on every node."""
    if not target.cluster:
        server = ClickHouse(replace(target, database="default"), pool_size=1)
        try:
            await server.command(f"DROP DATABASE IF EXISTS {target.database}")
        finally:
            server.close()
        return
    cluster = await Cluster.open(target)
    try:
        for database in (cluster.database, cluster.local_database):
            await cluster.on_every_node(f"DROP DATABASE IF EXISTS {database}", "default")
    finally:
        cluster.close()


async def first_answering(nodes: Sequence[Node], call: Any) -> Any:
    """call(node) on the first of nodes that answers; StoreUnavailable when none does."""
    failure: StoreUnavailable | None = None
    for node in nodes:
        try:
            return await call(node)
        except StoreUnavailable as exc:
            failure = exc
    raise failure or StoreUnavailable("no node to run on")


async def replica_lag(ch: ClickHouse, database: str, table: str) -> str:
    """Why the replica ch is on may miss parts of table committed elsewhere ('' when it holds
    them all): parts still to fetch, or replication log entries not yet pulled into its queue."""
    rows = await ch.fetch(
        "SELECT zookeeper_path, log_pointer, inserts_in_queue, is_readonly FROM system.replicas"
        " WHERE database = %(db)s AND table = %(table)s",
        {"db": database, "table": table},
    )
    if not rows:
        return ""  # not a replicated table: nothing is elsewhere
    path, pointer, inserts, readonly = rows[0]
    if readonly:
        return "read-only (no ZooKeeper session)"
    if inserts:
        return f"fetching {inserts} parts"
    # log_pointer is the first entry of the shared log not yet in the replica's queue.
    unread = await ch.fetch(
        "SELECT count() FROM system.zookeeper WHERE path = %(path)s AND name >= %(first)s",
        {"path": f"{path}/log", "first": f"log-{int(pointer):010d}"},
    )
    return f"behind by {unread[0][0]} log entries" if unread[0][0] else ""
