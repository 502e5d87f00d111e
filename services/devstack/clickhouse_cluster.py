"""The dev ClickHouse cluster: ZooKeeper plus 2 shards x 2 replicas of ClickHouse on loopback."""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from services.config import Settings
from services.devstack import clickhouse_server, processes, zookeeper
from services.devstack.clickhouse_config import ClickHouseLayout, ClusterRole, write_config
from services.devstack.endpoints import Endpoint
from services.devstack.failures import DevstackError
from services.devstack.probes import http_probe, tcp_open
from services.devstack.zookeeper import ZooKeeperLayout, ZooKeeperState

CLUSTER_NAME = "linkpulse"
SHARDS = 2
REPLICAS = 2
DEFAULT_PORT_BASE = 9100
PORT_BASE_VARIABLE = "CLICKHOUSE_CLUSTER_PORT_BASE"
# Node i (1-based) listens on base+i (native), base+100+i (interserver) and base-900+i (http):
# 9101.., 9201.. and 8201.. with the default base.
_INTERSERVER_OFFSET = 100
_HTTP_OFFSET = -900
_HOST = "127.0.0.1"
_READY_TIMEOUT = 90.0
_STOP_GRACE = 30.0
_CLOSE_TIMEOUT = 10.0
# A cluster name becomes an XML element of <remote_servers>.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def node_ports(port_base: int, nodes: int = SHARDS * REPLICAS) -> list[int]:
    """Every port the cluster's nodes listen on for a port base (native, interserver, http)."""
    offsets = (0, _INTERSERVER_OFFSET, _HTTP_OFFSET)
    return [port_base + offset + i for offset in offsets for i in range(1, nodes + 1)]


@dataclass(frozen=True)
class NodeLayout:
    """One ClickHouse server of the cluster: its name, shard, replica and server layout."""

    name: str
    shard: int
    replica: int
    server: ClickHouseLayout

    @property
    def endpoint(self) -> Endpoint:
        """Native-protocol endpoint."""
        return Endpoint(self.server.listen_host, self.server.tcp_port)

    @property
    def http_endpoint(self) -> Endpoint:
        """HTTP endpoint (/ping)."""
        return Endpoint(self.server.listen_host, self.server.http_port)

    @property
    def pid_path(self) -> Path:
        """Pid file of the server the stack started."""
        return self.server.root / "clickhouse.pid"


@dataclass(frozen=True)
class ClusterLayout:
    """Name, ports and paths of the dev cluster and its ZooKeeper."""

    name: str
    root: Path
    port_base: int
    zookeeper: ZooKeeperLayout
    database: str = "linkpulse"
    user: str = "default"
    password: str = ""
    shards: int = SHARDS
    replicas: int = REPLICAS

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise DevstackError(f"cluster name {self.name!r} must be a plain identifier")

    @classmethod
    def from_settings(
        cls, settings: Settings, port_base: int | None = None, zookeeper_port: int | None = None
    ) -> ClusterLayout:
        """Layout under <run_dir>/cluster with the database and user of CLICKHOUSE_URL; ports
        from the arguments, else $CLICKHOUSE_CLUSTER_PORT_BASE / $ZOOKEEPER_PORT, else defaults.
        """
        if port_base is None:
            port_base = int(os.environ.get(PORT_BASE_VARIABLE) or DEFAULT_PORT_BASE)
        root = settings.run_dir / "cluster"
        parts = urlsplit(settings.clickhouse_url)
        return cls(
            name=os.environ.get("CLICKHOUSE_CLUSTER") or CLUSTER_NAME,
            root=root,
            port_base=port_base,
            zookeeper=ZooKeeperLayout.under(root, zookeeper_port),
            database=parts.path.strip("/") or "linkpulse",
            user=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
        )

    def native_endpoint(self, index: int) -> Endpoint:
        """Native endpoint of node index (1-based)."""
        return Endpoint(_HOST, self.port_base + index)

    @property
    def nodes(self) -> tuple[NodeLayout, ...]:
        """Every node, shard by shard: ch1, ch2 (shard 1), ch3, ch4 (shard 2)."""
        count = self.shards * self.replicas
        shards = tuple(
            tuple(self.native_endpoint(s * self.replicas + r + 1) for r in range(self.replicas))
            for s in range(self.shards)
        )
        nodes = []
        for index in range(1, count + 1):
            shard, replica = divmod(index - 1, self.replicas)
            name = f"ch{index}"
            role = ClusterRole(
                cluster=self.name,
                shard=shard + 1,
                replica=name,
                interserver_http_port=self.port_base + _INTERSERVER_OFFSET + index,
                shards=shards,
                zookeeper=(self.zookeeper.endpoint,),
            )
            server = ClickHouseLayout(
                root=self.root / name,
                tcp_port=self.port_base + index,
                http_port=self.port_base + _HTTP_OFFSET + index,
                listen_host=_HOST,
                user=self.user,
                password=self.password,
                cluster=role,
            )
            nodes.append(NodeLayout(name, shard + 1, replica + 1, server))
        return tuple(nodes)

    def node(self, name: str) -> NodeLayout:
        """The node called name (ch1..ch4)."""
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(node.name for node in self.nodes)
        raise DevstackError(f"no cluster node {name!r} (nodes: {known})")

    def shard_nodes(self, shard: int) -> tuple[NodeLayout, ...]:
        """The replicas of one shard (1-based)."""
        return tuple(node for node in self.nodes if node.shard == shard)

    def url(self) -> str:
        """CLICKHOUSE_URL reaching the cluster: the first node, the others as alt_hosts."""
        first, *others = (node.endpoint for node in self.nodes)
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        alt_hosts = ",".join(str(endpoint) for endpoint in others)
        return f"clickhouse://{auth}@{first}/{self.database}?alt_hosts={alt_hosts}"

    def env(self) -> dict[str, str]:
        """Environment variables under which a linkpulse process uses the cluster."""
        return {"CLICKHOUSE_URL": self.url(), "CLICKHOUSE_CLUSTER": self.name}


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
