"""The processes of `stack up --cluster`: copies, their ports, env and specs; down and status."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from services.cli import stack as stack_cli
from services.devstack import cluster_stack, copies, stack
from services.devstack.cluster_layout import ClusterLayout
from services.devstack.failures import DevstackError
from services.protos import SERVICES
from tests.services.devstack.helpers import isolated_settings


def test_plan_has_two_copies_of_each_service_and_flusher(tmp_path: Path) -> None:
    plan = copies.plan(isolated_settings(tmp_path))
    names = [copy.name for copy in plan]
    assert names == [
        *(f"{service}-{n}" for service in SERVICES for n in (1, 2)),
        "worker-1", "flusher-1", "flusher-2", "gateway-1",
    ]  # fmt: skip


def test_copy_two_listens_ten_ports_up(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path, query_addr="127.0.0.1:50051")
    assert [str(e) for e in copies.service_endpoints(settings, "query")] == [
        "127.0.0.1:50051",
        "127.0.0.1:50061",
    ]
    # A list left in QUERY_GRPC_ADDR by a cluster stack gives the same copies.
    listed = isolated_settings(tmp_path, query_addr="127.0.0.1:50051,127.0.0.1:50061")
    assert copies.service_endpoints(listed, "query") == copies.service_endpoints(settings, "query")


def test_every_process_gets_the_cluster_and_every_address(tmp_path: Path) -> None:
    settings = isolated_settings(
        tmp_path,
        query_addr="127.0.0.1:50051",
        live_addr="127.0.0.1:50052",
        export_addr="127.0.0.1:50053",
        audit_addr="127.0.0.1:50054",
    )
    layout = ClusterLayout.from_settings(settings, port_base=9100, zookeeper_port=12181)
    env = cluster_stack.process_env(settings, layout)
    assert env["CLICKHOUSE_CLUSTER"] == "linkpulse"
    assert env["CLICKHOUSE_URL"].startswith("clickhouse://default@127.0.0.1:9101/linkpulse?")
    assert env["QUERY_GRPC_ADDR"] == "127.0.0.1:50051,127.0.0.1:50061"
    assert env["AUDIT_GRPC_ADDR"] == "127.0.0.1:50054,127.0.0.1:50064"

    specs = {spec.name: spec for spec in copies.specs(settings, env)}
    query2 = specs["query-2"]
    assert query2.env["GRPC_LISTEN_ADDR"] == "127.0.0.1:50061"
    assert query2.env["QUERY_GRPC_ADDR"] == env["QUERY_GRPC_ADDR"]
    assert query2.argv[-5:] == (sys.executable, "-m", "services.cli.main", "serve", "query")
    assert "services.devstack.supervisor" in query2.argv
    assert query2.pid_path == tmp_path / "pids" / "query-2.pid"
    assert query2.log_path == tmp_path / "logs" / "query-2.log"
    assert query2.ready is not None and not query2.ready()
    for name in ("flusher-1", "flusher-2", "worker-1", "gateway-1"):
        assert "GRPC_LISTEN_ADDR" not in specs[name].env
        assert specs[name].env["CLICKHOUSE_URL"] == env["CLICKHOUSE_URL"]
    assert specs["flusher-2"].ready is None and specs["gateway-1"].ready is not None


def test_down_and_status_of_a_cluster_stack_with_nothing_running(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path)
    stack.write_json(tmp_path / stack.STATE_FILE, {"mode": "cluster"})
    status = stack.status(settings)
    assert status["mode"] == "cluster"
    assert [p["name"] for p in status["processes"]] == [c.name for c in copies.plan(settings)]
    assert {p["state"] for p in status["processes"]} == {"not running"}
    assert [n["name"] for n in status["cluster"]["nodes"]] == ["ch1", "ch2", "ch3", "ch4"]
    assert "clickhouse" not in status

    down = stack.down(settings)
    names = [p["name"] for p in down["processes"]]
    assert "gateway" in names and "gateway-1" in names and "query-2" in names
    assert "cluster" not in down  # the cluster stops only with --all
    assert not (tmp_path / stack.STATE_FILE).exists()
    assert stack.status(settings)["mode"] == "single"


def test_cluster_up_refuses_while_the_single_stack_runs(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path)
    stack.write_json(tmp_path / stack.STATE_FILE, {"mode": "single", "processes": ["query"]})
    with pytest.raises(DevstackError, match="stack down"):
        cluster_stack.up(settings)
    assert not (tmp_path / "cluster").exists()


def test_cli_takes_the_cluster_options() -> None:
    parser = argparse.ArgumentParser()
    stack_cli.register(parser.add_subparsers(dest="command", required=True))
    assert parser.parse_args(["stack", "up", "--cluster"]).cluster
    assert parser.parse_args(["stack", "status", "--cluster"]).cluster
    args = parser.parse_args(["stack", "clickhouse", "--cluster", "--stop-node", "ch2", "--kill"])
    assert (args.cluster, args.stop_node, args.kill) == (True, "ch2", True)
    assert parser.parse_args(["stack", "clickhouse", "--cluster", "--start-node", "ch2"]).start_node
