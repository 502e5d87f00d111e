"""Load the demo workspace: catalog in PostgreSQL, generated events in ClickHouse, a fresh key.

Reset never deletes events in place (ALTER TABLE … DELETE is an asynchronous mutation, so counts
would be wrong until it finishes): the old demo workspace is deleted in PostgreSQL, its ClickHouse
rows are queued for deletion best-effort, and a new workspace (new id, same organization) gets the
events. A load builds under a temporary slug and takes the `demo` slug only once every event is
inserted, so a crashed load never leaves a half-filled demo behind; the next load clears it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import grpc
from clickhouse_driver import errors as ch_errors

from services import errors
from services.admin.credentials import create_api_key
from services.demo import workspace
from services.demo.catalog import LINKS
from services.demo.events import Block, Counts, DemoEvents
from services.demo.profiles import link_profiles
from services.errors import StoreUnavailable
from services.stores.clickhouse import ClickHouse
from services.stores.cluster import on_stored_data

SCOPES = ["analytics:read", "events:write", "workspace:update"]
EVENT_TABLES = ("clicks", "leads", "sales")

Progress = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"linkpulse demo: {message}", file=sys.stderr, flush=True)


def _iso(epoch: int) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat() if epoch else None


def _utc(moment: datetime | None) -> datetime:
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


async def load_demo(
    pg_pool: asyncpg.Pool,
    ch: ClickHouse,
    *,
    clicks: int = 1_000_000,
    days: int = 90,
    seed: int = 7,
    reset: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
    mint_key: bool = True,
    reuse_only: int | None = None,
    refuse_existing: bool = False,
) -> dict[str, Any]:
    """The demo workspace (found, or made with `clicks` clicks over `days` days) and a new key
    (unless not mint_key). `loaded` says whether events were generated, `api_key_minted` whether
    a key was. reuse_only: the id of the demo workspace to reuse, NOT_FOUND if it is not the demo;
    refuse_existing: ALREADY_EXISTS rather than reuse an existing demo (its clicks would not be
    the ones asked for)."""
    if clicks < 0:
        raise errors.invalid_argument("clicks", "clicks must not be negative")
    if days < 1:
        raise errors.invalid_argument("days", "days must be at least 1")
    if reuse_only is not None and reset:
        raise errors.invalid_argument("reset", "reuse a demo workspace or reset it, not both")
    say = progress or _stderr
    end = _utc(now)
    start = end - timedelta(days=days)
    async with pg_pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", workspace.LOCK_KEY)
        try:
            existing = await workspace.find(conn)
            _check_choice(existing, reset, reuse_only, refuse_existing, clicks)
            if existing is not None and not reset:
                found = await _describe(conn, ch, existing["id"], existing["organization_id"])
                return {**found, "loaded": False, **await _key(conn, existing["id"], mint_key)}
            stale = await workspace.unfinished(conn)
            old = ([existing] if existing is not None else []) + stale
            organization_id = old[0]["organization_id"] if old else None
            for row in old:
                await workspace.retire(conn, row["id"])
            await _forget_events(ch, [row["id"] for row in old], say)

            tz = ZoneInfo(workspace.TIMEZONE)
            built = await workspace.build(
                conn, organization_id, start.astimezone(tz), end.astimezone(tz)
            )
            profiles = link_profiles(
                LINKS, built.link_ids, built.rules, days, Random(f"{seed}:links")
            )
            events = DemoEvents(
                built.workspace_id,
                profiles,
                start=int(start.timestamp()),
                end=int(end.timestamp()),
                tz=tz,
                clicks=clicks,
                seed=seed,
            )
            began = time.monotonic()
            await _insert_all(ch, events, clicks, say)
            seconds = round(time.monotonic() - began, 1)
            say(f"{events.counts.clicks} clicks, {events.counts.leads} leads, "
                f"{events.counts.sales} sales in {seconds} s")  # fmt: skip
            await workspace.promote(conn, built.workspace_id)
            return {
                "workspace_id": built.workspace_id,
                "organization_id": built.organization_id,
                "workspace_slug": workspace.DEMO_SLUG,
                **await _key(conn, built.workspace_id, mint_key),
                "loaded": True,
                "replaced_workspace_id": existing["id"] if existing is not None else None,
                "links": len(built.link_ids),
                "campaigns": len(built.campaign_ids),
                "clicks": events.counts.clicks,
                "leads": events.counts.leads,
                "sales": events.counts.sales,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "created": True,
                "seconds": seconds,
            }
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", workspace.LOCK_KEY)


def _check_choice(
    existing: asyncpg.Record | None,
    reset: bool,
    reuse_only: int | None,
    refuse_existing: bool,
    clicks: int,
) -> None:
    """Refuse a load whose explicit choice does not fit the demo found (or not found)."""
    if reuse_only is not None and (existing is None or existing["id"] != reuse_only):
        demo = "there is none" if existing is None else f"it is workspace {existing['id']}"
        raise errors.not_found(
            f"workspace {reuse_only}",
            "workspace",
            message=f"workspace {reuse_only} is not the demo workspace ({demo})",
        )
    if existing is not None and refuse_existing and not reset:
        raise errors.ApiError(
            grpc.StatusCode.ALREADY_EXISTS,
            "already_exists",
            f"the demo workspace {existing['id']} exists already and its events are not "
            f"generated again ({clicks} clicks asked): pass --reset to replace it, or "
            f"--workspace {existing['id']} without --clicks and --days to reuse it",
            "clicks",
        )


async def _key(conn: asyncpg.Connection, workspace_id: int, mint: bool) -> dict[str, Any]:
    """A new demo key of the workspace (when mint), as the result's fields."""
    if not mint:
        return {"api_key_minted": False}
    made = await create_api_key(conn, workspace_id, SCOPES, name="demo")
    return {"api_key": str(made["key"]), "api_key_id": made["id"], "api_key_minted": True}


async def _insert_all(ch: ClickHouse, events: DemoEvents, clicks: int, say: Progress) -> None:
    """Generate blocks in a worker thread and insert each while the next one is generated."""
    blocks = events.blocks()
    began = time.monotonic()
    pending: asyncio.Task[int] | None = None
    try:
        while (block := await asyncio.to_thread(next, blocks, None)) is not None:
            if pending is not None:
                await pending
            pending = asyncio.create_task(_insert(ch, block))
            if block.table == "clicks":
                elapsed = time.monotonic() - began
                say(f"{events.counts.clicks:,}/{clicks:,} clicks ({elapsed:.1f} s)")
        if pending is not None:
            await pending
            pending = None
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending


async def _insert(ch: ClickHouse, block: Block) -> int:
    return await ch.insert(block.table, block.columns, block.rows)


async def _forget_events(ch: ClickHouse, workspace_ids: list[int], say: Progress) -> None:
    """Queue deletion of retired workspaces' events; they are unreachable either way."""
    if not workspace_ids:
        return
    ids = ", ".join(str(int(i)) for i in workspace_ids)
    for table in EVENT_TABLES:
        try:
            await on_stored_data(ch, f"ALTER TABLE {table} DELETE WHERE workspace_id IN ({ids})")
        except (StoreUnavailable, ch_errors.Error) as exc:
            say(f"could not queue deletion of old demo rows in {table}: {exc}")


async def _describe(
    conn: asyncpg.Connection, ch: ClickHouse, workspace_id: int, organization_id: int
) -> dict[str, Any]:
    """What an existing demo workspace holds (its range is that of its clicks)."""
    params = {"ws": workspace_id}
    counts = Counts()
    first = last = 0
    for table in EVENT_TABLES:
        rows = await ch.fetch(
            f"SELECT count(), toUnixTimestamp(min(timestamp)), toUnixTimestamp(max(timestamp))"
            f" FROM {table} WHERE workspace_id = %(ws)s",
            params,
        )
        n, low, high = rows[0]
        setattr(counts, table, int(n))
        if table == "clicks" and n:
            first, last = int(low), int(high)
    return {
        "workspace_id": workspace_id,
        "organization_id": organization_id,
        "workspace_slug": workspace.DEMO_SLUG,
        **await workspace.summary(conn, workspace_id),
        "clicks": counts.clicks,
        "leads": counts.leads,
        "sales": counts.sales,
        "start": _iso(first),
        "end": _iso(last),
        "created": False,
    }
