"""The dev ClickHouse cluster: start, stop and check ZooKeeper and its 2 shards x 2 replicas."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.devstack import clickhouse_server, processes, zookeeper
from services.devstack.clickhouse_config import write_config
from services.devstack.cluster_layout import (
    CLUSTER_NAME,
    DEFAULT_PORT_BASE,
    PORT_BASE_VARIABLE,
    ClusterLayout,
    NodeLayout,
    node_ports,
)
from services.devstack.endpoints import Endpoint
from services.devstack.failures import DevstackError
from services.devstack.probes import http_probe, tcp_open
from services.devstack.zookeeper import ZooKeeperState

__all__ = [
    "CLUSTER_NAME",
    "DEFAULT_PORT_BASE",
    "ClusterLayout",
    "ClusterState",
    "NodeLayout",
    "NodeState",
    "cluster_status",
    "ensure_cluster",
    "node_ports",
    "node_status",
    "start_node",
    "stop_cluster",
    "stop_node",
]

_READY_TIMEOUT = 90.0
_STOP_GRACE = 30.0
_CLOSE_TIMEOUT = 10.0


@dataclass(frozen=True)
class NodeState:
    """Whether one node runs and answers."""

    name: str
    shard: int
    replica: int
    state: str  # started | running | reused | stopped | killed | not running
    endpoint: Endpoint
    http_port: int
    pid: int | None = None
    version: str | None = None
    log: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form for the CLI."""
        return {
            "name": self.name,
            "shard": self.shard,
            "replica": self.replica,
            "state": self.state,
            "address": str(self.endpoint),
            "http_port": self.http_port,
            "pid": self.pid,
            "version": self.version,
            "log": str(self.log) if self.log else None,
        }


@dataclass(frozen=True)
class ClusterState:
    """ZooKeeper and every node, plus the environment that reaches the cluster."""

    name: str
    zookeeper: ZooKeeperState
    nodes: tuple[NodeState, ...]
    env: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form for the CLI."""
        return {
            "cluster": self.name,
            "zookeeper": self.zookeeper.as_dict(),
            "nodes": [node.as_dict() for node in self.nodes],
            "env": self.env,
        }


def node_spec(node: NodeLayout, binary: str) -> processes.ProcessSpec:
    """How to run one node in the background (ready when /ping answers)."""
    return processes.ProcessSpec(
        name=f"clickhouse-{node.name}",
        argv=clickhouse_server.server_argv(binary, node.server.config_path),
        pid_path=node.pid_path,
        log_path=node.server.log_dir / "stdout.log",
        ready=http_probe(node.http_endpoint, "/ping"),
        marker=f"--config-file={node.server.config_path}",
        ready_timeout=_READY_TIMEOUT,
        stop_grace=_STOP_GRACE,
    )


def _binary(binary: str | None) -> str:
    return clickhouse_server.find_server(binary) or "clickhouse-server"


def _version(layout: ClusterLayout, node: NodeLayout, timeout: float = 3.0) -> str | None:
    try:
        return clickhouse_server.server_version(
            node.endpoint, layout.user, layout.password, timeout
        )
    except DevstackError:
        return None


def _node_state(
    layout: ClusterLayout, node: NodeLayout, state: str, pid: int | None, version: str | None
) -> NodeState:
    return NodeState(
        node.name,
        node.shard,
        node.replica,
        state,
        node.endpoint,
        node.server.http_port,
        pid,
        version,
        node.server.log_dir / "err.log",
    )


def start_node(layout: ClusterLayout, name: str, binary: str | None = None) -> NodeState:
    """Start one node (unless it runs) and wait until it answers a query."""
    node = layout.node(name)
    found = clickhouse_server.find_server(binary)
    spec = node_spec(node, found or "clickhouse-server")
    pid = processes.running_pid(spec)
    if pid is None and tcp_open(node.endpoint):
        version = _version(layout, node)
        if version is None:
            raise DevstackError(
                f"port {node.endpoint.port} of cluster node {name} is in use by something else;"
                f" free it or set {PORT_BASE_VARIABLE}"
            )
        return _node_state(layout, node, "reused", None, version)
    if pid is None:
        if tcp_open(node.http_endpoint):
            raise DevstackError(
                f"http port {node.server.http_port} of cluster node {name} is in use;"
                f" free it or set {PORT_BASE_VARIABLE}"
            )
        if found is None:
            found = clickhouse_server.install_server()
            spec = node_spec(node, found)
        write_config(node.server)
    result = processes.start(spec)
    version = clickhouse_server.server_version(node.endpoint, layout.user, layout.password)
    return _node_state(layout, node, result.state, result.pid, version)


def _wait_closed(node: NodeLayout) -> None:
    deadline = time.monotonic() + _CLOSE_TIMEOUT
    while tcp_open(node.endpoint, timeout=0.2) or tcp_open(node.http_endpoint, timeout=0.2):
        if time.monotonic() > deadline:
            raise DevstackError(f"cluster node {node.name} still listens after SIGKILL")
        time.sleep(0.05)


def stop_node(layout: ClusterLayout, name: str, kill: bool = False) -> NodeState:
    """Stop one node the stack started; kill=True SIGKILLs it (a crash, not a shutdown)."""
    node = layout.node(name)
    spec = node_spec(node, _binary(None))
    if kill:
        pid = processes.running_pid(spec)
        if pid is not None:
            processes.kill(pid)
            processes.running_pid(spec)  # clears the pid file of the dead process
            # The leader thread exits first: the sockets close with the last thread.
            _wait_closed(node)
            return _node_state(layout, node, "killed", pid, None)
    result = processes.stop(spec)
    return _node_state(layout, node, result.state, result.pid, None)


def node_status(layout: ClusterLayout, name: str) -> NodeState:
    """Whether one node runs (started by the stack) and answers."""
    node = layout.node(name)
    pid = processes.running_pid(node_spec(node, _binary(None)))
    version = _version(layout, node, timeout=2.0)
    if pid is not None:
        state = "running"
    else:
        state = "not running" if version is None else "external"
    return _node_state(layout, node, state, pid, version)


def _each_node(layout: ClusterLayout, call: Any) -> tuple[NodeState, ...]:
    # Each start waits for its own /ping: in parallel the cluster is up in one server's time.
    with ThreadPoolExecutor(max_workers=len(layout.nodes)) as pool:
        return tuple(pool.map(call, [node.name for node in layout.nodes]))


def ensure_cluster(layout: ClusterLayout, binary: str | None = None) -> ClusterState:
    """Make ZooKeeper and every node answer: reuse what runs, start the rest."""
    zk = zookeeper.ensure(layout.zookeeper)
    if clickhouse_server.find_server(binary) is None:
        binary = clickhouse_server.install_server()
    nodes = _each_node(layout, lambda name: start_node(layout, name, binary))
    return ClusterState(layout.name, zk, nodes, layout.env())


def stop_cluster(layout: ClusterLayout, include_zookeeper: bool = True) -> ClusterState:
    """Stop every node the stack started, then ZooKeeper (unless include_zookeeper=False)."""
    nodes = _each_node(layout, lambda name: stop_node(layout, name))
    zk = (
        zookeeper.stop(layout.zookeeper)
        if include_zookeeper
        else zookeeper.status(layout.zookeeper)
    )
    return ClusterState(layout.name, zk, nodes, layout.env())


def cluster_status(layout: ClusterLayout) -> ClusterState:
    """ZooKeeper and each node: running, pid, version."""
    nodes = _each_node(layout, lambda name: node_status(layout, name))
    return ClusterState(layout.name, zookeeper.status(layout.zookeeper), nodes, layout.env())
