"""Scope filters (link, campaign, folder, tag) resolved to the workspace's link ids."""

from __future__ import annotations

import asyncpg

from services import errors

# filter name -> (table holding the entity, SQL of its links)
_SCOPES = {
    "campaign": ("campaigns", "SELECT id FROM links WHERE workspace_id = $1 AND campaign_id = $2"),
    "folder": ("folders", "SELECT id FROM links WHERE workspace_id = $1 AND folder_id = $2"),
    "tag": ("tags", "SELECT link_id AS id FROM link_tags WHERE workspace_id = $1 AND tag_id = $2"),
}


async def require_link(pool: asyncpg.Pool, workspace_id: int, link_id: int) -> asyncpg.Record:
    """The link row, or 404 when it is not in the workspace."""
    row = await pool.fetchrow(
        "SELECT id, domain, slug, destination_url, campaign_id, folder_id FROM links"
        " WHERE id = $1 AND workspace_id = $2",
        link_id,
        workspace_id,
    )
    if row is None:
        raise errors.not_found(f"link {link_id}")
    return row


async def link_ids(
    pool: asyncpg.Pool,
    workspace_id: int,
    *,
    link_id: int | None = None,
    campaign_id: int | None = None,
    folder_id: int | None = None,
    tag_id: int | None = None,
) -> tuple[int, ...] | None:
    """Links matching every given filter (None when none is given: the whole workspace)."""
    chosen: set[int] | None = None
    if link_id is not None:
        await require_link(pool, workspace_id, link_id)
        chosen = {link_id}
    for name, value in (("campaign", campaign_id), ("folder", folder_id), ("tag", tag_id)):
        if value is None:
            continue
        table, links_sql = _SCOPES[name]
        exists = await pool.fetchval(
            f"SELECT 1 FROM {table} WHERE id = $1 AND workspace_id = $2", value, workspace_id
        )
        if exists is None:
            raise errors.not_found(f"{name} {value}")
        ids = {r["id"] for r in await pool.fetch(links_sql, workspace_id, value)}
        chosen = ids if chosen is None else chosen & ids
    return None if chosen is None else tuple(sorted(chosen))
