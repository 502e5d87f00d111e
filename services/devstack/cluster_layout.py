"""Where the dev cluster lives: its name, nodes (shard, replica), ports, paths, and the URL."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from services.config import Settings
from services.devstack.clickhouse_config import ClickHouseLayout, ClusterRole
from services.devstack.endpoints import Endpoint
from services.devstack.failures import DevstackError
from services.devstack.zookeeper import ZooKeeperLayout

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
        """Environment variables under which a linkpulse process uses the cluster: the HTTP
        ports are listed node by node, in the order of the URL's hosts."""
        return {
            "CLICKHOUSE_URL": self.url(),
            "CLICKHOUSE_CLUSTER": self.name,
            "CLICKHOUSE_HTTP_PORT": ",".join(str(node.server.http_port) for node in self.nodes),
        }
