"""Links and what groups them: campaigns, folders, tags and redirect rules."""

from __future__ import annotations

from typing import Any

import asyncpg
import grpc

from services import errors
from services.admin import checks

_GROUP_TABLES = ("campaigns", "folders", "tags")


async def create_group(
    conn: asyncpg.Connection | asyncpg.Pool, table: str, workspace_id: int, name: str
) -> int:
    """Id of the campaign, folder or tag `name` of the workspace, created if missing."""
    if table not in _GROUP_TABLES:
        raise ValueError(f"unknown group table {table!r}")
    found = await conn.fetchval(
        f"INSERT INTO {table} (workspace_id, name) VALUES ($1, $2)"
        " ON CONFLICT (workspace_id, name) DO NOTHING RETURNING id",
        workspace_id,
        name,
    )
    if found is None:
        found = await conn.fetchval(
            f"SELECT id FROM {table} WHERE workspace_id = $1 AND name = $2", workspace_id, name
        )
    return int(found)


async def create_link(
    conn: asyncpg.Connection | asyncpg.Pool,
    workspace_id: int,
    *,
    domain: str,
    slug: str,
    destination_url: str,
    campaign_id: int | None = None,
    folder_id: int | None = None,
    tag_ids: list[int] | None = None,
) -> dict[str, Any]:
    """A new link of the workspace; campaign, folder and tags must belong to the same workspace.
    Slug, domain and URL are checked first; a slug taken on the domain is ALREADY_EXISTS."""
    checks.slug(slug)
    domain = checks.domain(domain)
    checks.url(destination_url)
    await _slug_free(conn, domain, slug)
    try:
        row = await conn.fetchrow(
            "INSERT INTO links (workspace_id, domain, slug, destination_url, campaign_id,"
            " folder_id) VALUES ($1, $2, $3, $4, $5, $6)"
            " RETURNING id, workspace_id, domain, slug, destination_url, campaign_id, folder_id",
            workspace_id,
            domain,
            slug,
            destination_url,
            campaign_id,
            folder_id,
        )
    except asyncpg.UniqueViolationError as exc:
        # Taken between the check and the insert (the transaction, if any, is aborted now).
        raise _slug_taken(domain, slug) from exc
    for tag_id in tag_ids or []:
        await conn.execute(
            "INSERT INTO link_tags (link_id, tag_id, workspace_id) VALUES ($1, $2, $3)",
            row["id"],
            tag_id,
            workspace_id,
        )
    return {**dict(row), "tag_ids": list(tag_ids or [])}


async def _slug_free(conn: asyncpg.Connection | asyncpg.Pool, domain: str, slug: str) -> None:
    """ALREADY_EXISTS naming the link that has slug on domain, if one does."""
    taken = await conn.fetchrow(
        "SELECT id, workspace_id FROM links WHERE domain = $1 AND slug = $2", domain, slug
    )
    if taken is not None:
        raise _slug_taken(
            domain, slug, f" (link {taken['id']} of workspace {taken['workspace_id']})"
        )


def _slug_taken(domain: str, slug: str, which: str = "") -> errors.ApiError:
    return errors.ApiError(
        grpc.StatusCode.ALREADY_EXISTS,
        "already_exists",
        f"slug {slug!r} already exists on domain {domain!r}{which}",
        "slug",
    )


async def create_rule(
    conn: asyncpg.Connection | asyncpg.Pool,
    workspace_id: int,
    link_id: int,
    name: str,
    destination_url: str,
    conditions: list[tuple[str, str, str]],
    priority: int = 0,
) -> dict[str, Any]:
    """A redirect rule of a link with its (field, operator, value) conditions."""
    rule_id = await conn.fetchval(
        "INSERT INTO link_rules (link_id, workspace_id, name, destination_url, priority)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id",
        link_id,
        workspace_id,
        name,
        destination_url,
        priority,
    )
    condition_ids = [
        await conn.fetchval(
            "INSERT INTO rule_conditions (rule_id, workspace_id, field, operator, value)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id",
            rule_id,
            workspace_id,
            field,
            operator,
            value,
        )
        for field, operator, value in conditions
    ]
    return {"id": rule_id, "link_id": link_id, "condition_ids": condition_ids}
