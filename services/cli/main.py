"""Entry point of the `linkpulse` command: one sub-command module per group."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import NoReturn

from services.cli import admin, audit, dashboard, embed, jobs, probe, serve, stack
from services.cli.errors import (
    AUDIT_BROKEN_EXIT,
    CLASSES,
    INTERRUPTED_EXIT,
    UsageError,
    classify,
    report,
)
from services.cli.output import print_json

GROUPS = (admin, audit, dashboard, embed, jobs, probe, serve, stack)
# Commands that set up logging themselves.
LOGGING_COMMANDS = ("serve",)


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are raised, to be reported like any other."""

    def error(self, message: str) -> NoReturn:
        """Raise the usage error instead of printing it and exiting."""
        raise UsageError(message, self.format_usage().strip())


def version() -> str:
    """The installed distribution's version (from its package metadata)."""
    try:
        return metadata.version("linkpulse")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def exit_statuses() -> str:
    """The help text that lists the exit statuses."""
    lines = [f"  {c.exit_status}  {c.code}: {c.meaning}" for c in CLASSES]
    lines.append(f"  {AUDIT_BROKEN_EXIT}  audit verify: an entry was altered or removed")
    lines.sort(key=lambda line: int(line.split()[0]))
    return (
        "Results are JSON on stdout. A failure is a line of JSON, the last on stderr,\n"
        '{"error": {"code": ..., "message": ...}}, with the exit status of its class:\n'
        "  0  success\n" + "\n".join(lines) + f"\n  {INTERRUPTED_EXIT}  interrupted"
    )


def build_parser() -> argparse.ArgumentParser:
    """Parser with every group's sub-commands registered."""
    parser = Parser(
        prog="linkpulse",
        description="linkpulse click analytics",
        epilog=exit_statuses(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"linkpulse {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command: its JSON result on stdout; a failure as JSON on stderr with the exit
    status of its class (services/cli/errors.py)."""
    # Until a command sets up logging itself (serve), libraries' log records (clickhouse-driver's
    # tracebacks on a refused connection) would interleave with the JSON error on stderr.
    quiet = logging.NullHandler()
    root = logging.getLogger()
    root.addHandler(quiet)
    try:
        args = build_parser().parse_args(argv)
        if args.command in LOGGING_COMMANDS:
            root.removeHandler(quiet)
        result = args.handler(args)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
    except KeyboardInterrupt:
        return INTERRUPTED_EXIT
    except Exception as exc:  # noqa: BLE001 - every failure is reported by its class
        return report(classify(exc))
    finally:
        root.removeHandler(quiet)
    if result is not None:
        print_json(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
