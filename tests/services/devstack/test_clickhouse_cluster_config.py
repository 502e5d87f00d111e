"""The dev cluster's layout and each node's rendered cluster sections, and ZooKeeper's zoo.cfg."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from services.devstack.clickhouse_config import render_config
from services.devstack.cluster_layout import ClusterLayout
from services.devstack.failures import DevstackError
from services.devstack.zookeeper import render_config as render_zoo_cfg
from tests.services.devstack.helpers import isolated_settings

_REPLICAS = "remote_servers/linkpulse/shard/replica"


def _layout(
    tmp_path: Path, url: str = "clickhouse://default@127.0.0.1:9000/linkpulse"
) -> ClusterLayout:
    settings = isolated_settings(tmp_path / "run", clickhouse_url=url)
    return ClusterLayout.from_settings(settings, port_base=9100, zookeeper_port=12181)


def test_default_layout_has_the_shared_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLICKHOUSE_CLUSTER_PORT_BASE", raising=False)
    monkeypatch.delenv("ZOOKEEPER_PORT", raising=False)
    monkeypatch.delenv("CLICKHOUSE_CLUSTER", raising=False)
    settings = isolated_settings(tmp_path / "run")
    layout = ClusterLayout.from_settings(settings)
    assert layout.name == "linkpulse"
    assert layout.zookeeper.port == 12181
    assert layout.zookeeper.root == tmp_path / "run" / "cluster" / "zookeeper"
    rows = [
        (n.name, n.shard, n.replica, n.server.tcp_port, n.server.http_port) for n in layout.nodes
    ]
    assert rows == [
        ("ch1", 1, 1, 9101, 8201),
        ("ch2", 1, 2, 9102, 8202),
        ("ch3", 2, 1, 9103, 8203),
        ("ch4", 2, 2, 9104, 8204),
    ]
    assert [n.server.root for n in layout.nodes] == [
        tmp_path / "run" / "cluster" / f"ch{i}" for i in range(1, 5)
    ]
    assert [n.name for n in layout.shard_nodes(2)] == ["ch3", "ch4"]


def test_port_base_and_zookeeper_port_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLICKHOUSE_CLUSTER_PORT_BASE", "31000")
    monkeypatch.setenv("ZOOKEEPER_PORT", "31500")
    layout = ClusterLayout.from_settings(isolated_settings(tmp_path / "run"))
    assert [n.server.tcp_port for n in layout.nodes] == [31001, 31002, 31003, 31004]
    assert layout.zookeeper.port == 31500


def test_env_reaches_every_node(tmp_path: Path) -> None:
    env = _layout(tmp_path).env()
    assert env == {
        "CLICKHOUSE_URL": "clickhouse://default@127.0.0.1:9101/linkpulse"
        "?alt_hosts=127.0.0.1:9102,127.0.0.1:9103,127.0.0.1:9104",
        "CLICKHOUSE_CLUSTER": "linkpulse",
        "CLICKHOUSE_HTTP_PORT": "8201,8202,8203,8204",
    }


def test_env_keeps_database_user_and_password(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "clickhouse://lp:s%3Acret@127.0.0.1:9000/other")
    parts = urlsplit(layout.url())
    assert (parts.username, parts.password, parts.path) == ("lp", "s%3Acret", "/other")
    assert parse_qs(parts.query)["alt_hosts"] == ["127.0.0.1:9102,127.0.0.1:9103,127.0.0.1:9104"]


def test_node_config_has_the_cluster_sections(tmp_path: Path) -> None:
    node = _layout(tmp_path).node("ch3")
    root = ET.fromstring(render_config(node.server))
    assert root.tag == "yandex"
    assert root.findtext("tcp_port") == "9103"
    assert root.findtext("http_port") == "8203"
    assert root.findtext("interserver_http_port") == "9203"
    assert root.findtext("interserver_http_host") == "127.0.0.1"
    assert root.findtext("path") == f"{(tmp_path / 'run' / 'cluster' / 'ch3').resolve()}/data/"
    assert {el.tag: el.text for el in root.find("macros") or []} == {
        "cluster": "linkpulse",
        "shard": "2",
        "replica": "ch3",
    }
    shards = root.findall("remote_servers/linkpulse/shard")
    assert [s.findtext("internal_replication") for s in shards] == ["true", "true"]
    assert [[r.findtext("port") for r in s.findall("replica")] for s in shards] == [
        ["9101", "9102"],
        ["9103", "9104"],
    ]
    assert {r.findtext("host") for r in root.iterfind(_REPLICAS)} == {"127.0.0.1"}
    assert [r.findtext("user") for r in root.iterfind(_REPLICAS)] == ["default"] * 4
    nodes = root.findall("zookeeper/node")
    assert [(n.get("index"), n.findtext("host"), n.findtext("port")) for n in nodes] == [
        ("1", "127.0.0.1", "12181")
    ]
    assert root.findtext("distributed_ddl/path") == "/clickhouse/task_queue/ddl"


def test_remote_servers_log_in_as_the_url_user(tmp_path: Path) -> None:
    node = _layout(tmp_path, "clickhouse://lp:p%3Cw@127.0.0.1:9000/linkpulse").node("ch1")
    root = ET.fromstring(render_config(node.server))
    assert {(r.findtext("user"), r.findtext("password")) for r in root.iterfind(_REPLICAS)} == {
        ("lp", "p<w")
    }
    assert root.findtext("users/lp/password") == "p<w"


def test_unknown_node_and_bad_cluster_name_are_refused(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    with pytest.raises(DevstackError, match="no cluster node 'ch9'"):
        layout.node("ch9")
    with pytest.raises(DevstackError, match="plain identifier"):
        ClusterLayout("bad-name", tmp_path, 9100, layout.zookeeper)


def test_zoo_cfg_serves_the_port_from_the_run_dir(tmp_path: Path) -> None:
    layout = _layout(tmp_path).zookeeper
    lines = dict(line.split("=", 1) for line in render_zoo_cfg(layout).splitlines() if "=" in line)
    assert lines["clientPort"] == "12181"
    assert lines["clientPortAddress"] == "127.0.0.1"
    assert lines["dataDir"] == str((tmp_path / "run" / "cluster" / "zookeeper" / "data").resolve())
    assert lines["admin.enableServer"] == "false"
    assert lines["4lw.commands.whitelist"] == "ruok,srvr"
