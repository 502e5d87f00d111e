"""`linkpulse audit verify`: check a workspace's hash-chained audit log."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from services import config
from services.admin import checks
from services.audit.verification import verify_workspace
from services.cli.errors import AUDIT_BROKEN_EXIT
from services.cli.output import print_json
from services.stores.postgres import create_pool


async def _verify(workspace_id: int) -> dict[str, Any]:
    pool = await create_pool(config.load().database_url, max_size=2)
    try:
        result = await verify_workspace(pool, workspace_id)
        # A deleted workspace's log stays (and verifies); a workspace never seen is not found.
        if not result["checked"]:
            await checks.workspace(pool, workspace_id)
        return result
    finally:
        await pool.close()


def cmd_audit_verify(args: argparse.Namespace) -> None:
    """Print the verification of one workspace's chain; exit 3 when an entry was altered or
    removed."""
    result = asyncio.run(_verify(args.workspace))
    print_json(result)
    if not result["ok"]:
        raise SystemExit(AUDIT_BROKEN_EXIT)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `audit verify`."""
    audit = sub.add_parser("audit", help="the audit log").add_subparsers(
        dest="action", required=True
    )
    p = audit.add_parser(
        "verify", help="check a workspace's hash chain; report the first altered or removed entry"
    )
    p.add_argument("--workspace", type=int, required=True)
    p.set_defaults(handler=cmd_audit_verify)
