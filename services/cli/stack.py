"""`linkpulse stack ...`: run the local development stack (see services/devstack)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from services import config
from services.devstack import clickhouse_server, stack


def _up(args: argparse.Namespace) -> dict[str, Any] | None:
    result = stack.up(config.load(), args.clickhouse_bin, args.timeout)
    if args.json:
        return result
    print(stack.format_summary(result), flush=True)
    return None


def _down(args: argparse.Namespace) -> dict[str, Any]:
    return stack.down(config.load(), include_clickhouse=args.all)


def _status(args: argparse.Namespace) -> dict[str, Any]:
    return stack.status(config.load())


def _clickhouse(args: argparse.Namespace) -> dict[str, Any]:
    settings = config.load()
    if args.stop:
        return clickhouse_server.stop(settings).as_dict()
    return clickhouse_server.ensure(settings, args.clickhouse_bin).as_dict()


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
    up.set_defaults(handler=_up)

    down = commands.add_parser("down", help="stop what `stack up` started")
    down.add_argument(
        "--all", action="store_true", help="also stop the project ClickHouse whoever started it"
    )
    down.set_defaults(handler=_down)

    status = commands.add_parser("status", help="show what runs and what answers")
    status.set_defaults(handler=_status)

    ch = commands.add_parser(
        "clickhouse", help="make sure ClickHouse is installed and answers at CLICKHOUSE_URL"
    )
    _clickhouse_bin_option(ch)
    ch.add_argument("--stop", action="store_true", help="stop the project ClickHouse instead")
    ch.set_defaults(handler=_clickhouse)
