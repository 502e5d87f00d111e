"""ClickHouse migrations on a cluster: local tables in `<db>_shard` on every node (replicated when
ZooKeeper is configured), Distributed tables of the same names in `<db>` over them.

The migration files are the single-node ones, unchanged. They run once per *copy of the data*:
per shard when ZooKeeper replicates its replicas' tables, else per node. In such a group CREATE
and DROP run on every member (each replica has its own table), while what writes data or alters
a replicated table (INSERT backfills, ALTER, OPTIMIZE) and every read runs on the group's first
member only: replication carries it to the others, and running it twice would double a backfill.
`ENGINE = XMergeTree()` becomes `ReplicatedXMergeTree('/clickhouse/tables/{shard}/<db>/<table>',
'{replica}')` when ZooKeeper is there. Every node records its own migrations (schema_migrations is
a plain local table), so a node added later, or one a crash left behind, catches up alone.

Why node by node and not `ON CLUSTER`: `ON CLUSTER` needs ZooKeeper (this must work without it),
runs every statement on every node (a backfill or ALTER has to run once per shard, not per
replica), and on 18.16 it returns after a timeout, not an error, when a node is down, leaving the
other nodes changed; node by node fails at the first node that is down, and the rerun (every
statement is idempotent) finishes the job. It is the same code with and without ZooKeeper.

The Distributed tables are (re)created on every node after the migrations: one per MergeTree
family table of `<db>_shard` (not the views, not schema_migrations) when missing or when its
columns or engine (the sharding key) differ; those left over from dropped tables are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from services.stores.clickhouse import ClickHouse, ClickHouseTarget, settings_for
from services.stores.cluster import Cluster, Node, sharding_key
from services.stores.migration_files import MIGRATION_TABLE, Migration, load

# Statements every replica of a group runs itself; anything else runs on the first only.
_EVERY_MEMBER = re.compile(r"\s*(CREATE|DROP|ATTACH|DETACH|RENAME)\b", re.I)
_OPTIMIZE = re.compile(r"\s*OPTIMIZE\s+TABLE\s+(?P<table>\w+)", re.I)
_MERGE_TREE = re.compile(
    r"(?P<head>CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<table>[\w.`]+).*?ENGINE\s*=\s*)"
    r"(?P<kind>\w*)MergeTree\(\s*\)",
    re.I | re.S,
)


def replicated(sql: str, database: str) -> str:
    """sql with a plain `ENGINE = XMergeTree()` of a CREATE TABLE made ReplicatedXMergeTree."""
    match = _MERGE_TREE.match(sql.lstrip())
    if match is None or match["kind"].lower().startswith("replicated"):
        return sql
    table = match["table"].split(".")[-1].strip("`")
    engine = (
        f"Replicated{match['kind']}MergeTree("
        f"'/clickhouse/tables/{{shard}}/{database}/{table}', '{{replica}}')"
    )
    text = sql.lstrip()
    return f"{match['head']}{engine}{text[match.end() :]}"


class CopyGroup(ClickHouse):
    """What a migration sees of one copy of the data: the nodes that share it, as one server."""

    def __init__(self, members: Sequence[ClickHouse], database: str, zookeeper: bool) -> None:
        super().__init__(members[0].target, pool_size=1)
        self.members = tuple(members)
        self.database = database
        self.zookeeper = zookeeper

    async def command(self, sql: str, settings: dict[str, Any] | None = None) -> None:
        """Run a statement on every member (CREATE/DROP) or on the first (the rest)."""
        if self.zookeeper:
            sql = replicated(sql, self.database)
        if _EVERY_MEMBER.match(sql):
            for member in self.members:
                await member.command(sql, settings)
        elif not await self._nothing_to_optimize(sql):
            await self.members[0].command(sql, settings)

    async def _nothing_to_optimize(self, sql: str) -> bool:
        # 18.16 fails an OPTIMIZE of a replicated table without parts ("Unknown log entry type")
        # instead of doing nothing.
        optimize = _OPTIMIZE.match(sql)
        if optimize is None:
            return False
        rows = await self.fetch(
            "SELECT count() FROM system.parts WHERE database = currentDatabase()"
            " AND table = %(table)s AND active",
            {"table": optimize["table"]},
        )
        return int(rows[0][0]) == 0

    async def fetch(
        self,
        sql: str,
        params: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> list[tuple[Any, ...]]:
        """Rows of a SELECT on the first member."""
        return await self.members[0].fetch(sql, params, settings)

    async def insert(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> int:
        """Insert rows on the first member."""
        return await self.members[0].insert(table, columns, rows)


async def migrate_cluster(target: ClickHouseTarget, sharding: str) -> list[str]:
    """Apply the pending ClickHouse migrations on every node of target.cluster and (re)create
    the Distributed tables; returns the names of the migrations applied anywhere."""
    cluster = await Cluster.open(target)
    try:
        for database in (cluster.database, cluster.local_database):
            await cluster.on_every_node(f"CREATE DATABASE IF NOT EXISTS {database}", "default")
        await cluster.on_every_node(MIGRATION_TABLE)
        done: list[str] = []
        for group in cluster.topology.writer_groups():
            for name in await _migrate_group(cluster, group):
                if name not in done:
                    done.append(name)
        for node in cluster.topology.nodes:
            await ensure_distributed(cluster, node, sharding)
        return done
    finally:
        cluster.close()


async def _applied(ch: ClickHouse) -> set[int]:
    return {int(row[0]) for row in await ch.fetch("SELECT version FROM schema_migrations")}


async def _migrate_group(cluster: Cluster, group: tuple[Node, ...]) -> list[str]:
    members = [cluster.client(node) for node in group]
    applied = [await _applied(member) for member in members]
    facade = CopyGroup(members, cluster.database, cluster.topology.zookeeper)
    done = []
    for migration in load("clickhouse"):
        behind = [
            m for m, seen in zip(members, applied, strict=True) if migration.version not in seen
        ]
        if not behind:
            continue
        # Statements and scripts are idempotent, so a crash midway is safe to rerun.
        await _apply(facade, migration)
        for member in behind:
            await member.insert(
                "schema_migrations", ("version", "name"), [(migration.version, migration.name)]
            )
        done.append(f"clickhouse/{migration.name}")
    return done


async def _apply(facade: CopyGroup, migration: Migration) -> None:
    if migration.script is not None:
        await migration.script(facade)
    for statement in migration.statements():
        await facade.command(statement)


async def _columns(ch: ClickHouse, database: str, table: str) -> list[tuple[str, ...]]:
    rows = await ch.fetch(
        "SELECT name, type, default_kind, default_expression FROM system.columns"
        " WHERE database = %(db)s AND table = %(table)s",
        {"db": database, "table": table},
    )
    return [tuple(str(value) for value in row) for row in rows]


def distributed_columns(local: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The columns of the Distributed table over a local table: MATERIALIZED ones become ALIAS
    of the same expression, since a Distributed table forwards the MATERIALIZED values it
    computes on insert and the shards refuse them (18.16); reads compute them on the shards."""
    return [
        (name, kind, "ALIAS" if default == "MATERIALIZED" else default, expression)
        for name, kind, default, expression in local
    ]


def _column_sql(name: str, kind: str, default: str, expression: str) -> str:
    return f"{name} {kind} {default} {expression}" if default else f"{name} {kind}"


def _normal(engine: str) -> str:
    return re.sub(r"[\s'`\"]", "", engine)


async def ensure_distributed(cluster: Cluster, node: Node, sharding: str) -> list[str]:
    """(Re)create on node the Distributed table of every local MergeTree-family table whose
    Distributed table is missing or differs, drop those of tables gone; returns what changed."""
    ch = cluster.client(node)
    local, database = cluster.local_database, cluster.database
    settings = settings_for(await ch.server_version())
    rows = await ch.fetch(
        "SELECT database, name, engine, engine_full FROM system.tables"
        " WHERE database IN (%(local)s, %(db)s)",
        {"local": local, "db": database},
    )
    tables = [
        str(name)
        for db, name, engine, _ in rows
        if db == local and str(engine).endswith("MergeTree") and name != "schema_migrations"
    ]
    existing = {str(name): str(full) for db, name, engine, full in rows if db == database}
    changed = []
    for table in tables:
        columns = distributed_columns(await _columns(ch, local, table))
        key = sharding_key(sharding, (c[0] for c in columns))
        engine = f"Distributed({cluster.topology.cluster}, {local}, {table}, {key})"
        if table in existing:
            if _normal(existing[table]) == _normal(engine) and columns == await _columns(
                ch, database, table
            ):
                continue
            await ch.command(f"DROP TABLE IF EXISTS {database}.{table}")
        await ch.command(
            f"CREATE TABLE {database}.{table}"
            f" ({', '.join(_column_sql(*column) for column in columns)}) ENGINE = {engine}",
            settings,
        )
        changed.append(table)
    for table, full in existing.items():
        if table not in tables and full.startswith("Distributed("):
            await ch.command(f"DROP TABLE IF EXISTS {database}.{table}")
            changed.append(table)
    return changed
