"""The demo workspace in PostgreSQL: found by slug, built under a temporary slug, retired."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from services.admin.links import create_group, create_link, create_rule
from services.admin.tenants import create_workspace
from services.demo.catalog import CAMPAIGNS, FOLDERS, LINKS, RULES, TAGS
from services.demo.rules import Condition, Rule

DEMO_SLUG = "demo"
NAME = "Demo"
PLAN = "business"
CURRENCY = "USD"
TIMEZONE = "America/New_York"
# Slugs with "--" never come out of slugify(), so no user's workspace can be mistaken for these.
BUILDING_SLUG = "demo--building"
RETIRED_SLUG = "demo--retired-{id}"
# Serialises concurrent demo loads (pg_advisory_lock key).
LOCK_KEY = 0x6C70_64656D6F
# How long before the range the demo's links, campaigns and workspace look created.
BACKDATE = timedelta(days=14)


@dataclass(frozen=True)
class DemoWorkspace:
    """A built demo workspace: ids of its links and campaigns (aligned with the catalog)."""

    workspace_id: int
    organization_id: int
    link_ids: list[int]
    campaign_ids: list[int]
    rules: dict[int, tuple[Rule, ...]]


async def find(conn: asyncpg.Connection, slug: str = DEMO_SLUG) -> asyncpg.Record | None:
    """The workspace with slug (id, organization_id), if any."""
    return await conn.fetchrow("SELECT id, organization_id FROM workspaces WHERE slug = $1", slug)


async def unfinished(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Workspaces left by demo loads that stopped before finishing."""
    return await conn.fetch(
        "SELECT id, organization_id FROM workspaces WHERE slug = $1 OR slug LIKE $2 ORDER BY id",
        BUILDING_SLUG,
        BUILDING_SLUG + "-%",
    )


async def retire(conn: asyncpg.Connection, workspace_id: int) -> None:
    """Delete a demo workspace, or when other rows still refer to it, rename and disable it."""
    try:
        async with conn.transaction():
            await conn.execute("DELETE FROM workspaces WHERE id = $1", workspace_id)
    except asyncpg.ForeignKeyViolationError:
        suffix = "--retired-" + str(workspace_id)
        async with conn.transaction():
            await conn.execute(
                "UPDATE workspaces SET slug = $2 WHERE id = $1",
                workspace_id,
                RETIRED_SLUG.format(id=workspace_id),
            )
            # Frees the short links' slugs for the next demo.
            await conn.execute(
                "UPDATE links SET slug = slug || $2, archived_at = coalesce(archived_at, now())"
                " WHERE workspace_id = $1",
                workspace_id,
                suffix,
            )
            await conn.execute(
                "UPDATE api_keys SET revoked_at = now() WHERE workspace_id = $1"
                " AND revoked_at IS NULL",
                workspace_id,
            )


async def promote(conn: asyncpg.Connection, workspace_id: int) -> None:
    """Give a finished build the demo slug."""
    await conn.execute("UPDATE workspaces SET slug = $2 WHERE id = $1", workspace_id, DEMO_SLUG)


async def _free_slug(conn: asyncpg.Connection, domain: str, slug: str) -> str:
    candidate, n = slug, 1
    while await conn.fetchval(
        "SELECT 1 FROM links WHERE domain = $1 AND slug = $2", domain, candidate
    ):
        n += 1
        candidate = f"{slug}-{n}"
    return candidate


async def build(
    conn: asyncpg.Connection, organization_id: int | None, start: datetime, end: datetime
) -> DemoWorkspace:
    """Create the demo workspace (under BUILDING_SLUG) with its campaigns, links and rules."""
    async with conn.transaction():
        ws = await create_workspace(
            conn,
            NAME,
            plan=PLAN,
            currency=CURRENCY,
            timezone=TIMEZONE,
            organization_id=organization_id,
            slug=BUILDING_SLUG,
        )
        workspace_id = int(ws["id"])
        campaigns = {
            c.name: await create_group(conn, "campaigns", workspace_id, c.name) for c in CAMPAIGNS
        }
        await _budgets(conn, workspace_id, campaigns, start, end)
        folders = {
            name: await create_group(conn, "folders", workspace_id, name) for name in FOLDERS
        }
        tags = {}
        for name, color in TAGS:
            tags[name] = await create_group(conn, "tags", workspace_id, name)
            await conn.execute("UPDATE tags SET color = $2 WHERE id = $1", tags[name], color)
        link_ids = []
        for spec in LINKS:
            link = await create_link(
                conn,
                workspace_id,
                domain=spec.domain,
                slug=await _free_slug(conn, spec.domain, spec.slug),
                destination_url=spec.destination_url,
                campaign_id=campaigns[spec.campaign] if spec.campaign else None,
                folder_id=folders[spec.folder] if spec.folder else None,
                tag_ids=[tags[t] for t in spec.tags],
            )
            link_ids.append(int(link["id"]))
        by_slug = dict(zip((spec.slug for spec in LINKS), link_ids, strict=True))
        rules: dict[int, tuple[Rule, ...]] = {}
        for rule in RULES:
            link_id = by_slug[rule.slug]
            made = await create_rule(
                conn,
                workspace_id,
                link_id,
                rule.name,
                rule.destination_url,
                conditions=list(rule.conditions),
                priority=rule.priority,
            )
            conditions = tuple(
                Condition(int(cid), *spec)
                for cid, spec in zip(made["condition_ids"], rule.conditions, strict=True)
            )
            stored = Rule(int(made["id"]), rule.priority, rule.destination_url, conditions)
            rules[link_id] = (*rules.get(link_id, ()), stored)
        created = start - BACKDATE
        await conn.execute(
            "UPDATE workspaces SET created_at = $2 WHERE id = $1", workspace_id, created
        )
        for table in ("campaigns", "folders", "tags", "links"):
            await conn.execute(
                f"UPDATE {table} SET created_at = $2 WHERE workspace_id = $1", workspace_id, created
            )
    return DemoWorkspace(
        workspace_id=workspace_id,
        organization_id=int(ws["organization_id"]),
        link_ids=link_ids,
        campaign_ids=list(campaigns.values()),
        rules=rules,
    )


async def _budgets(
    conn: asyncpg.Connection,
    workspace_id: int,
    campaigns: dict[str, int],
    start: datetime,
    end: datetime,
) -> None:
    """One budget per campaign over the whole range (dates in the workspace's time zone)."""
    minor_units = {
        r["code"].strip(): int(r["minor_units"])
        for r in await conn.fetch("SELECT code, minor_units FROM currencies")
    }
    for spec in CAMPAIGNS:
        await conn.execute(
            "INSERT INTO budgets (workspace_id, campaign_id, amount_minor, currency,"
            " cost_per_click_minor, period_start, period_end) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            workspace_id,
            campaigns[spec.name],
            spec.budget_major * 10 ** minor_units[spec.currency],
            spec.currency,
            spec.cost_per_click_minor,
            start.date(),
            end.date(),
        )


async def summary(conn: asyncpg.Connection, workspace_id: int) -> dict[str, int]:
    """How many links and campaigns the workspace has."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM links WHERE workspace_id = $1) AS links,"
        " (SELECT count(*) FROM campaigns WHERE workspace_id = $1) AS campaigns",
        workspace_id,
    )
    return {"links": int(row["links"]), "campaigns": int(row["campaigns"])}
