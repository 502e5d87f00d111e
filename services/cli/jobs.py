"""`linkpulse export|batch list|show`: the job rows of exports and batch queries."""

from __future__ import annotations

import argparse
from typing import Any

import asyncpg
import orjson

from services.cli.options import add_page_options
from services.cli.pools import with_pool
from services.export.jobtable import JobTable

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
_EXPORT_LISTED = (
    "id, workspace_id, actor, dataset, format, status, rows_written, rows_estimated, size_bytes,"
    " error, attempt, created_at, started_at, heartbeat_at, finished_at, expires_at"
).split(", ")
_BATCH_LISTED = "id, workspace_id, actor, status, error, attempt, created_at, finished_at".split(
    ", "
)


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def export_row(row: asyncpg.Record, full: bool = False) -> dict[str, Any]:
    """An export job as listed; full adds its columns, query spec and file name."""
    found = {name: row[name] for name in _EXPORT_LISTED}
    if full:
        found |= {"columns": list(row["columns"]), "spec": _json(row["spec"])}
        found["file_name"] = row["file_name"]
    return found


def batch_row(row: asyncpg.Record, full: bool = False) -> dict[str, Any]:
    """A batch as listed (with its number of items); full adds the items and their results."""
    items = _json(row["items"]) or []
    found = {name: row[name] for name in _BATCH_LISTED} | {"items": len(items)}
    if full:
        found |= {"items": items, "results": _json(row["results"])}
    return found


def _tables() -> dict[str, tuple[JobTable, Any]]:
    # Imported here: the batch module loads the whole query service.
    from services.export.batch import BATCHES
    from services.export.jobs import JOBS

    return {"export": (JOBS, export_row), "batch": (BATCHES, batch_row)}


async def cmd_list(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The newest jobs of one kind, filtered by workspace and status."""
    table, describe = _tables()[args.command]

    async def fetch(pool: asyncpg.Pool) -> list[dict[str, Any]]:
        rows = await table.listing(
            pool,
            workspace_id=args.workspace,
            status=args.status,
            limit=args.limit,
            after=args.after,
        )
        return [describe(r) for r in rows]

    return await with_pool(fetch)


async def cmd_show(args: argparse.Namespace) -> dict[str, Any]:
    """One job of one kind, in full."""
    table, describe = _tables()[args.command]

    async def fetch(pool: asyncpg.Pool) -> dict[str, Any]:
        return dict(describe(await table.find(pool, args.id), full=True))

    return await with_pool(fetch)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `export list|show` and `batch list|show`."""
    for kind, noun in (("export", "export jobs"), ("batch", "batch queries")):
        group = sub.add_parser(kind, help=noun).add_subparsers(dest="action", required=True)
        p = group.add_parser("list", help=f"list {noun}, newest first")
        p.add_argument("--workspace", type=int, help="only this workspace's")
        p.add_argument("--status", choices=STATUSES)
        add_page_options(p, "JOB_ID")
        p.set_defaults(handler=cmd_list)
        p = group.add_parser("show", help=f"show one of the {noun}")
        p.add_argument("id", metavar="JOB_ID")
        p.set_defaults(handler=cmd_show)
