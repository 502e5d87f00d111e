"""The project's ClickHouse server config: where it lives under the run dir, and its XML."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

from services.config import Settings
from services.devstack.endpoints import Endpoint, from_url

DEFAULT_NATIVE_PORT = 9000

# Keys understood by both the Debian 18.16 server and current releases; <yandex> is still
# accepted as the root element by current servers. Users live in this file, which both
# read when users_config is not set.
_TEMPLATE = """\
<?xml version="1.0"?>
<!-- Rendered by `linkpulse stack`; edits are overwritten on the next start. -->
<yandex>
  <logger>
    <level>warning</level>
    <log>{log_dir}server.log</log>
    <errorlog>{log_dir}err.log</errorlog>
    <size>100M</size>
    <count>2</count>
  </logger>
  <listen_host>{listen_host}</listen_host>
  <tcp_port>{tcp_port}</tcp_port>
  <http_port>{http_port}</http_port>
  <path>{data_dir}</path>
  <tmp_path>{tmp_dir}</tmp_path>
  <user_files_path>{user_files_dir}</user_files_path>
  <timezone>UTC</timezone>
  <mark_cache_size>536870912</mark_cache_size>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <users>
{users}
  </users>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
    </default>
  </profiles>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
{cluster}</yandex>
"""

_USER = """\
    <{name}>
      <password>{password}</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </{name}>"""


# Sections of a cluster node (18.16 and current servers read them alike).
_CLUSTER_TEMPLATE = """\
  <interserver_http_host>{interserver_host}</interserver_http_host>
  <interserver_http_port>{interserver_port}</interserver_http_port>
  <macros>
    <cluster>{cluster}</cluster>
    <shard>{shard}</shard>
    <replica>{replica}</replica>
  </macros>
  <remote_servers>
    <{cluster}>
{shards}
    </{cluster}>
  </remote_servers>
  <zookeeper>
{zookeeper}
    <session_timeout_ms>{session_timeout_ms}</session_timeout_ms>
  </zookeeper>
  <distributed_ddl>
    <path>{ddl_path}</path>
  </distributed_ddl>
  <!-- The test suites kill replicas: one whose last parts never reached ZooKeeper starts anyway
       (those parts are detached and fetched again from another replica) instead of refusing to
       start. A production node keeps the default and is restored with flags/force_restore_data. -->
  <merge_tree>
    <replicated_max_ratio_of_wrong_parts>1</replicated_max_ratio_of_wrong_parts>
  </merge_tree>
"""

_SHARD = """\
      <shard>
        <internal_replication>true</internal_replication>
{replicas}
      </shard>"""

_REPLICA = """\
        <replica>
          <host>{host}</host>
          <port>{port}</port>
          <user>{user}</user>
          <password>{password}</password>
        </replica>"""

_ZOOKEEPER_NODE = """\
    <node index="{index}">
      <host>{host}</host>
      <port>{port}</port>
    </node>"""

DDL_PATH = "/clickhouse/task_queue/ddl"


@dataclass(frozen=True)
class ClusterRole:
    """A node's place in a cluster: its macros, the cluster's shards, ZooKeeper and DDL queue."""

    cluster: str
    shard: int
    replica: str
    interserver_http_port: int
    # Native endpoints of each shard's replicas, shard 1 first.
    shards: tuple[tuple[Endpoint, ...], ...]
    zookeeper: tuple[Endpoint, ...]
    interserver_http_host: str = "127.0.0.1"
    ddl_path: str = DDL_PATH
    # A killed replica's ZooKeeper session (its is_active node) outlives it by this long, and
    # it cannot rejoin before: short, so a restarted dev node catches up within seconds.
    session_timeout_ms: int = 10000


@dataclass(frozen=True)
class ClickHouseLayout:
    """Ports, credentials and paths of the dev-stack ClickHouse server."""

    root: Path
    tcp_port: int
    http_port: int
    listen_host: str = "127.0.0.1"
    user: str = "default"
    password: str = ""
    # Set on the nodes of a cluster (services.devstack.clickhouse_cluster); None: one server.
    cluster: ClusterRole | None = field(default=None)

    @classmethod
    def from_settings(cls, settings: Settings) -> ClickHouseLayout:
        """Layout under <run_dir>/clickhouse with the ports and user of the settings."""
        endpoint = from_url(settings.clickhouse_url, DEFAULT_NATIVE_PORT)
        parts = urlsplit(settings.clickhouse_url)
        return cls(
            root=settings.run_dir / "clickhouse",
            tcp_port=endpoint.port,
            http_port=settings.clickhouse_http_port,
            listen_host="::1" if endpoint.connect_host == "::1" else "127.0.0.1",
            user=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
        )

    @property
    def config_path(self) -> Path:
        """The rendered config.xml."""
        return self.root / "config.xml"

    @property
    def data_dir(self) -> Path:
        """Table data and metadata."""
        return self.root / "data"

    @property
    def tmp_dir(self) -> Path:
        """Temporary data of large queries."""
        return self.root / "tmp"

    @property
    def log_dir(self) -> Path:
        """server.log and err.log."""
        return self.root / "logs"

    @property
    def user_files_dir(self) -> Path:
        """Files readable by the file() table function."""
        return self.root / "user_files"

    def users(self) -> Mapping[str, str]:
        """User name to plain-text password: default, plus the URL's user if different."""
        users = {"default": self.password if self.user == "default" else ""}
        users[self.user] = self.password
        return users


def _dir(path: Path) -> str:
    # ClickHouse concatenates file names onto these paths, so they need the trailing slash.
    return escape(str(path.resolve()).rstrip("/") + "/")


def render_cluster(role: ClusterRole, user: str, password: str) -> str:
    """The cluster sections of a node's config.xml."""
    shards = "\n".join(
        _SHARD.format(
            replicas="\n".join(
                _REPLICA.format(
                    host=escape(replica.connect_host),
                    port=replica.port,
                    user=escape(user),
                    password=escape(password),
                )
                for replica in replicas
            )
        )
        for replicas in role.shards
    )
    zookeeper = "\n".join(
        _ZOOKEEPER_NODE.format(index=index, host=escape(node.connect_host), port=node.port)
        for index, node in enumerate(role.zookeeper, start=1)
    )
    return _CLUSTER_TEMPLATE.format(
        interserver_host=escape(role.interserver_http_host),
        interserver_port=role.interserver_http_port,
        cluster=escape(role.cluster),
        shard=role.shard,
        replica=escape(role.replica),
        shards=shards,
        zookeeper=zookeeper,
        ddl_path=escape(role.ddl_path),
        session_timeout_ms=role.session_timeout_ms,
    )


def render_config(layout: ClickHouseLayout) -> str:
    """config.xml text for the layout."""
    users = "\n".join(
        _USER.format(name=escape(name), password=escape(password))
        for name, password in layout.users().items()
    )
    return _TEMPLATE.format(
        log_dir=_dir(layout.log_dir),
        listen_host=escape(layout.listen_host),
        tcp_port=layout.tcp_port,
        http_port=layout.http_port,
        data_dir=_dir(layout.data_dir),
        tmp_dir=_dir(layout.tmp_dir),
        user_files_dir=_dir(layout.user_files_dir),
        users=users,
        cluster=render_cluster(layout.cluster, layout.user, layout.password)
        if layout.cluster
        else "",
    )


def write_config(layout: ClickHouseLayout) -> Path:
    """Create the directories and write config.xml; return its path."""
    for directory in (layout.data_dir, layout.tmp_dir, layout.log_dir, layout.user_files_dir):
        directory.mkdir(parents=True, exist_ok=True)
    layout.config_path.write_text(render_config(layout))
    return layout.config_path
