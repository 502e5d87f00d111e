"""A dev cluster of its own (ZooKeeper + 2 shards x 2 replicas): DDL on cluster, replication,
Distributed reads over both shards, a replica killed and brought back, everything stopped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from clickhouse_driver import Client

from services.devstack import clickhouse_cluster, clickhouse_server, zookeeper
from services.devstack.cluster_layout import ClusterLayout, NodeLayout
from services.devstack.probes import tcp_open
from tests.services.devstack.helpers import free_cluster_ports, isolated_settings

pytestmark = pytest.mark.skipif(
    clickhouse_server.find_server() is None or not zookeeper.installed(),
    reason="clickhouse-server or zookeeper is not installed (`linkpulse stack clickhouse "
    "--cluster` installs them)",
)

_LOCAL = "lp_test_shard"
_DIST = "lp_test"
# A killed replica rejoins once its ZooKeeper session expired (10 s) and a retry came (10 s).
_WAIT_SECONDS = 60.0


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[ClusterLayout]:
    """A cluster layout on free ports under tmp_path; whatever runs is stopped afterwards."""
    base, zk_port = free_cluster_ports()
    settings = isolated_settings(tmp_path / "run")
    layout = ClusterLayout.from_settings(settings, port_base=base, zookeeper_port=zk_port)
    yield layout
    clickhouse_cluster.stop_cluster(layout)


def _client(node: NodeLayout) -> Client:
    return Client(node.endpoint.connect_host, node.endpoint.port, connect_timeout=5)


def _query(node: NodeLayout, sql: str, params: Any = None, **settings: Any) -> list[Any]:
    client = _client(node)
    try:
        result = client.execute(sql, params, settings=settings or None)
        return list(result) if isinstance(result, list) else []
    finally:
        client.disconnect()


def _eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _WAIT_SECONDS
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {_WAIT_SECONDS:g}s: {what}")
        time.sleep(0.2)


def _local_count(node: NodeLayout) -> int:
    return int(_query(node, f"SELECT count() FROM {_LOCAL}.events")[0][0])


def _reads_all(node: NodeLayout, rows: int) -> bool:
    return _query(node, f"SELECT count() FROM {_DIST}.events") == [(rows,)]


def _insert(node: NodeLayout, workspaces: range) -> None:
    rows = [(ws, n) for ws in workspaces for n in range(10)]
    _query(
        node,
        f"INSERT INTO {_DIST}.events (workspace_id, n) VALUES",
        rows,
        insert_distributed_sync=1,
    )


def test_cluster_replicates_shards_and_survives_a_replica_restart(
    layout: ClusterLayout,
) -> None:
    state = clickhouse_cluster.ensure_cluster(layout)
    assert state.zookeeper.state == "started" and state.zookeeper.mode == "standalone"
    assert [n.state for n in state.nodes] == ["started"] * 4
    assert state.env["CLICKHOUSE_CLUSTER"] == "linkpulse"
    ch1, ch2, ch3, ch4 = layout.nodes

    clusters = _query(
        ch1,
        "SELECT shard_num, replica_num, port FROM system.clusters WHERE cluster = 'linkpulse'"
        " ORDER BY shard_num, replica_num",
    )
    assert clusters == [(1, 1, ch1.server.tcp_port), (1, 2, ch2.server.tcp_port)] + [
        (2, 1, ch3.server.tcp_port),
        (2, 2, ch4.server.tcp_port),
    ]

    # DDL once, on every node through ZooKeeper's queue; tables replicated per {shard}.
    for database in (_LOCAL, _DIST):
        _query(ch1, f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER linkpulse")
    _query(
        ch1,
        f"CREATE TABLE {_LOCAL}.events ON CLUSTER linkpulse (workspace_id UInt64, n UInt32)"
        f" ENGINE = ReplicatedMergeTree('/clickhouse/tables/{{shard}}/{_LOCAL}/events',"
        " '{replica}') ORDER BY (workspace_id, n)",
    )
    _query(
        ch1,
        f"CREATE TABLE {_DIST}.events ON CLUSTER linkpulse AS {_LOCAL}.events"
        f" ENGINE = Distributed(linkpulse, {_LOCAL}, events, cityHash64(workspace_id))",
    )

    _insert(ch1, range(1, 41))
    _eventually(
        lambda: _local_count(ch1) == _local_count(ch2) and _local_count(ch3) == _local_count(ch4),
        "each shard's replicas hold the same rows",
    )
    assert _local_count(ch1) > 0 and _local_count(ch3) > 0, "both shards got rows"
    assert _local_count(ch1) + _local_count(ch3) == 400
    for node in layout.nodes:
        assert _query(node, f"SELECT count(), uniqExact(workspace_id) FROM {_DIST}.events") == [
            (400, 40)
        ], node.name

    # A replica crashes: the other replica of its shard answers reads and takes writes.
    killed = clickhouse_cluster.stop_node(layout, "ch2", kill=True)
    assert killed.state == "killed" and not tcp_open(ch2.endpoint)
    assert clickhouse_cluster.node_status(layout, "ch2").state == "not running"
    _insert(ch3, range(41, 81))
    # Replication is asynchronous: a read through another node may lag for a moment.
    for node in (ch1, ch3, ch4):
        _eventually(partial(_reads_all, node, 800), f"{node.name} reads every row")

    # Back again, it catches up from its sibling through ZooKeeper's log.
    restarted = clickhouse_cluster.start_node(layout, "ch2")
    assert restarted.state == "started" and restarted.version
    _eventually(lambda: _local_count(ch2) == _local_count(ch1), "the restarted replica caught up")
    status = clickhouse_cluster.cluster_status(layout)
    assert [n.state for n in status.nodes] == ["running"] * 4
    assert status.zookeeper.state == "running"

    stopped = clickhouse_cluster.stop_cluster(layout)
    assert [n.state for n in stopped.nodes] == ["stopped"] * 4
    assert stopped.zookeeper.state == "stopped"
    assert not any(tcp_open(node.endpoint) for node in layout.nodes)
    assert not tcp_open(layout.zookeeper.endpoint)
