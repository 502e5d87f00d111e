"""Organizations and workspaces."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg


def slugify(name: str) -> str:
    """Lower-case, dash-separated form of name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "workspace"


async def create_workspace(
    conn: asyncpg.Connection | asyncpg.Pool,
    name: str,
    *,
    plan: str = "free",
    currency: str = "USD",
    timezone: str = "UTC",
    organization_id: int | None = None,
    slug: str | None = None,
) -> dict[str, Any]:
    """A new workspace (in a new organization unless one is given)."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}") from exc
    if await conn.fetchval("SELECT 1 FROM plans WHERE code = $1", plan) is None:
        raise ValueError(f"unknown plan {plan!r}")
    if await conn.fetchval("SELECT 1 FROM currencies WHERE code = $1", currency.upper()) is None:
        raise ValueError(f"unsupported currency {currency!r}")
    if organization_id is None:
        organization_id = await conn.fetchval(
            "INSERT INTO organizations (name) VALUES ($1) RETURNING id", name
        )
    base = slug or slugify(name)
    candidate, n = base, 1
    while await conn.fetchval("SELECT 1 FROM workspaces WHERE slug = $1", candidate):
        n += 1
        candidate = f"{base}-{n}"
    row = await conn.fetchrow(
        "INSERT INTO workspaces (organization_id, name, slug, plan, default_currency, timezone)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, organization_id, name, slug, plan,"
        " default_currency, timezone",
        organization_id,
        name,
        candidate,
        plan,
        currency.upper(),
        timezone,
    )
    return {**dict(row), "default_currency": row["default_currency"].strip()}


async def set_plan(conn: asyncpg.Connection | asyncpg.Pool, workspace_id: int, plan: str) -> None:
    """Move a workspace to another plan."""
    done = await conn.execute("UPDATE workspaces SET plan = $2 WHERE id = $1", workspace_id, plan)
    if done.endswith(" 0"):
        raise ValueError(f"workspace {workspace_id} not found")
