"""`linkpulse stack ...`: run the local development stack (see services/devstack)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from services import config
from services.devstack import clickhouse_cluster, clickhouse_server, cluster_stack, stack
from services.devstack.cluster_layout import ClusterLayout
from services.devstack.failures import DevstackError


def _up(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.cluster:
        result = cluster_stack.up(config.load(), args.clickhouse_bin, args.timeout)
        text = cluster_stack.format_summary(result)
    else:
        result = stack.up(config.load(), args.clickhouse_bin, args.timeout)
        text = stack.format_summary(result)
    if args.json:
        return result
    print(text, flush=True)
    return None


def _down(args: argparse.Namespace) -> dict[str, Any]:
    return stack.down(config.load(), include_clickhouse=args.all)


def _status(args: argparse.Namespace) -> dict[str, Any]:
    return stack.status(config.load(), cluster=True if args.cluster else None)


def _cluster(args: argparse.Namespace) -> dict[str, Any]:
    layout = ClusterLayout.from_settings(config.load())
    if args.stop_node:
        return clickhouse_cluster.stop_node(layout, args.stop_node, kill=args.kill).as_dict()
    if args.start_node:
        return clickhouse_cluster.start_node(layout, args.start_node, args.clickhouse_bin).as_dict()
    if args.stop:
        return clickhouse_cluster.stop_cluster(layout).as_dict()
    return clickhouse_cluster.ensure_cluster(layout, args.clickhouse_bin).as_dict()


def _clickhouse(args: argparse.Namespace) -> dict[str, Any]:
    if args.cluster:
        return _cluster(args)
    if args.stop_node or args.start_node:
        raise DevstackError("--stop-node and --start-node go with --cluster")
    settings = config.load()
    if args.stop:
        return clickhouse_server.stop(settings).as_dict()
    return clickhouse_server.ensure(settings, args.clickhouse_bin).as_dict()


def _cluster_option(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--cluster", action="store_true", help=help)


def _clickhouse_bin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clickhouse-bin",
        default=os.environ.get("CLICKHOUSE_SERVER_BIN") or None,
        help="clickhouse-server (or `clickhouse`) binary to run "
        "(default: $CLICKHOUSE_SERVER_BIN, else the installed one, installed with apt if missing)",
    )


def register(sub: Any) -> None:
    """Add `stack up|down|status|clickhouse` to the CLI."""
    parser = sub.add_parser("stack", help="run the local development stack")
    commands = parser.add_subparsers(dest="stack_command", required=True)

    up = commands.add_parser(
        "up", help="start backends, ClickHouse, migrations, demo data and every service"
    )
    _clickhouse_bin_option(up)
    up.add_argument(
        "--timeout", type=float, default=60.0, help="seconds each process has to become ready"
    )
    up.add_argument("--json", action="store_true", help="print the summary as JSON")
    _cluster_option(
        up,
        "on the dev ClickHouse cluster (ZooKeeper, 2 shards x 2 replicas), with two copies of "
        "each gRPC service and of the flusher",
    )
    up.set_defaults(handler=_up)

    down = commands.add_parser("down", help="stop what `stack up` started")
    down.add_argument(
        "--all",
        action="store_true",
        help="also stop the project ClickHouse whoever started it, and the dev cluster",
    )
    down.set_defaults(handler=_down)

    status = commands.add_parser("status", help="show what runs and what answers")
    _cluster_option(status, "show the cluster stack even if the last `up` was single-node")
    status.set_defaults(handler=_status)

    ch = commands.add_parser(
        "clickhouse", help="make sure ClickHouse is installed and answers at CLICKHOUSE_URL"
    )
    _clickhouse_bin_option(ch)
    ch.add_argument("--stop", action="store_true", help="stop the project ClickHouse instead")
    _cluster_option(
        ch,
        "the dev cluster instead: ZooKeeper and 2 shards x 2 replicas "
        "(ports from CLICKHOUSE_CLUSTER_PORT_BASE, ZOOKEEPER_PORT); prints nodes and the env",
    )
    ch.add_argument("--stop-node", metavar="NODE", help="with --cluster: stop one node (ch1..ch4)")
    ch.add_argument("--kill", action="store_true", help="with --stop-node: SIGKILL it instead")
    ch.add_argument("--start-node", metavar="NODE", help="with --cluster: start one node again")
    ch.set_defaults(handler=_clickhouse)
