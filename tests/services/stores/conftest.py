"""A ClickHouse cluster (ZooKeeper + 2 shards x 2 replicas) for the cluster-mode tests: the one
CLICKHOUSE_CLUSTER names when set (started by the launcher unless it runs), else one of their
own on free ports, started by the launcher and stopped after the session; skipped when the
launcher cannot start one here."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from urllib.parse import urlsplit, urlunsplit

import pytest

from services import config
from services.devstack import clickhouse_cluster, clickhouse_server, zookeeper
from services.devstack.clickhouse_cluster import ClusterLayout
from services.devstack.failures import DevstackError
from services.stores.clickhouse import ClickHouse, ClickHouseTarget
from services.stores.cluster import Cluster
from services.stores.migrate import migrate
from tests.databases import drop_databases
from tests.services.devstack.helpers import free_cluster_ports


@dataclass(frozen=True)
class TestCluster:
    """A running dev cluster, and whether this session started it (and may stop its nodes)."""

    layout: ClusterLayout
    own: bool

    @property
    def name(self) -> str:
        """The cluster's name in <remote_servers>."""
        return self.layout.name

    def url(self, database: str) -> str:
        """CLICKHOUSE_URL of database on the cluster (every node, the others as alt_hosts)."""
        parts = urlsplit(self.layout.url())
        return urlunsplit(parts._replace(path=f"/{database}"))

    def stop(self, node: str) -> None:
        """Kill one node (ch1, ch2: shard 1; ch3, ch4: shard 2)."""
        clickhouse_cluster.stop_node(self.layout, node, kill=True)

    def start(self, node: str) -> None:
        """Start one node again and wait until it answers."""
        clickhouse_cluster.start_node(self.layout, node)


@pytest.fixture(scope="session")
def test_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    """The cluster the cluster-mode tests run against."""
    if clickhouse_server.find_server() is None or not zookeeper.installed():
        pytest.skip("no ClickHouse cluster: clickhouse-server or zookeeper is not installed")
    settings = config.load()
    if settings.clickhouse_cluster:
        layout, own = ClusterLayout.from_settings(settings), False
    else:
        base, zk_port = free_cluster_ports()
        run_dir = tmp_path_factory.mktemp("cluster_run")
        layout = ClusterLayout.from_settings(
            replace(settings, run_dir=run_dir), port_base=base, zookeeper_port=zk_port
        )
        own = True
    try:
        clickhouse_cluster.ensure_cluster(layout)
    except DevstackError as exc:
        if own:
            clickhouse_cluster.stop_cluster(layout)
        pytest.skip(f"no ClickHouse cluster could be started: {exc}")
    try:
        yield TestCluster(layout, own)
    finally:
        if own:
            clickhouse_cluster.stop_cluster(layout)


@dataclass
class ClusterDatabase:
    """A migrated database on the test cluster."""

    cluster: TestCluster
    pg_url: str
    url: str
    sharding: str

    @property
    def target(self) -> ClickHouseTarget:
        """Where the Distributed tables are, in cluster mode."""
        return ClickHouseTarget.from_url(self.url, self.cluster.name)

    def client(self) -> ClickHouse:
        """A pool on the Distributed tables (the caller closes it)."""
        return ClickHouse(self.target, pool_size=2)

    async def nodes(self) -> Cluster:
        """Per-node clients on the local tables (the caller closes them)."""
        return await Cluster.open(self.target)

    async def migrate(self, sharding: str | None = None) -> list[str]:
        """Apply the migrations (again), with another sharding if given."""
        self.sharding = sharding or self.sharding
        return await migrate(self.pg_url, self.url, self.cluster.name, self.sharding)


@pytest.fixture
async def cluster_db(test_cluster: TestCluster) -> AsyncIterator[ClusterDatabase]:
    """A fresh database migrated on the cluster (sharded by workspace), dropped afterwards."""
    name = f"lp_cluster_{uuid.uuid4().hex[:8]}"
    settings = config.load()
    pg_url = urlunsplit(urlsplit(settings.database_url)._replace(path=f"/{name}"))
    db = ClusterDatabase(test_cluster, pg_url, test_cluster.url(name), "workspace")
    try:
        yield db
    finally:
        await drop_databases(pg_url, db.url, test_cluster.name)
