"""Organizations and workspaces."""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from services import errors
from services.admin import checks
from services.auditlog.recorder import record, transaction


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
    """A new workspace (in a new organization unless one is given); its name, time zone, plan,
    currency and organization checked first."""
    if not name.strip():
        raise errors.invalid_argument("name", "name must not be empty")
    checks.timezone(timezone)
    await checks.plan(conn, plan)
    currency = await checks.currency(conn, currency)
    if organization_id is not None and (
        await conn.fetchval("SELECT 1 FROM organizations WHERE id = $1", organization_id) is None
    ):
        raise errors.not_found(f"organization {organization_id}", "organization")
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
        currency,
        timezone,
    )
    return {**dict(row), "default_currency": row["default_currency"].strip()}


async def set_plan(
    conn: asyncpg.Connection | asyncpg.Pool,
    workspace_id: int,
    plan: str,
    *,
    actor: str = "system",
) -> dict[str, Any]:
    """Move a workspace to another plan (audited as workspace.plan_changed)."""
    await checks.plan(conn, plan)
    async with transaction(conn) as tx:
        old = await tx.fetchval(
            "SELECT plan FROM workspaces WHERE id = $1 FOR UPDATE", workspace_id
        )
        if old is None:
            raise errors.not_found(f"workspace {workspace_id}", "workspace")
        await tx.execute("UPDATE workspaces SET plan = $2 WHERE id = $1", workspace_id, plan)
        if old != plan:
            await record(
                tx,
                workspace_id=workspace_id,
                actor=actor,
                action="workspace.plan_changed",
                target=f"workspace:{workspace_id} plan:{old}->{plan}",
            )
    return {"id": workspace_id, "plan": plan, "previous_plan": old}


async def set_extra_features(
    conn: asyncpg.Connection | asyncpg.Pool,
    workspace_id: int,
    features: list[str],
    *,
    actor: str = "system",
) -> dict[str, Any]:
    """Replace the features a workspace has beyond its plan's (audited as
    workspace.features_changed)."""
    chosen = await checks.features(conn, features)
    async with transaction(conn) as tx:
        old = await tx.fetchval(
            "SELECT extra_features FROM workspaces WHERE id = $1 FOR UPDATE", workspace_id
        )
        if old is None:
            raise errors.not_found(f"workspace {workspace_id}", "workspace")
        await tx.execute(
            "UPDATE workspaces SET extra_features = $2 WHERE id = $1", workspace_id, chosen
        )
        if sorted(old) != chosen:
            await record(
                tx,
                workspace_id=workspace_id,
                actor=actor,
                action="workspace.features_changed",
                target=f"workspace:{workspace_id} extra_features:[{','.join(chosen)}]",
            )
    return {"id": workspace_id, "extra_features": chosen, "previous_extra_features": sorted(old)}
