"""Entry point of the `linkpulse` command: one sub-command module per group."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sys
from collections.abc import Sequence

from services.cli import admin, audit, dashboard, embed, serve, stack
from services.cli.output import print_json

GROUPS = (admin, audit, dashboard, embed, serve, stack)


def build_parser() -> argparse.ArgumentParser:
    """Parser with every group's sub-commands registered."""
    parser = argparse.ArgumentParser(prog="linkpulse", description="linkpulse click analytics")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; JSON results go to stdout, errors to stderr with exit status 1."""
    args = build_parser().parse_args(argv)
    try:
        result = args.handler(args)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI reports every failure the same way
        print(f"linkpulse {args.command}: {exc}", file=sys.stderr)
        return 1
    if result is not None:
        print_json(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
