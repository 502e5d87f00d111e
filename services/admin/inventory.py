"""What the stores hold, for operators: workspaces, API keys and links, listed and shown by id.

Listings are newest first, at most `limit` rows, continuing after the row `after` (an id).
API keys are described by id, prefix and scopes: never the key or its hash.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg

from services import errors

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

_WORKSPACE = (
    "w.id, w.organization_id, w.name, w.slug, w.plan, trim(w.default_currency) AS"
    " default_currency, w.timezone, w.extra_features, w.created_at"
)
_API_KEY = (
    "id, workspace_id, name, prefix, scopes, created_at, expires_at, last_used_at, revoked_at,"
    " (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())) AS active"
)
_LINK = (
    "id, workspace_id, domain, slug, destination_url, campaign_id, folder_id, created_at,"
    " archived_at"
)


class Page:
    """Where a listing starts and how long it is, with its SQL conditions gathered."""

    def __init__(self, limit: int, after: int | None, id_column: str = "id") -> None:
        if limit < 1:
            raise errors.invalid_argument("limit", "limit must be at least 1")
        self.limit = limit
        self.id_column = id_column
        self.conditions: list[str] = []
        self.args: list[Any] = []
        if after is not None:
            self.where(f"{id_column} < ${{n}}", after)

    def where(self, condition: str, value: Any = None) -> None:
        """Add condition; with a value, on it as the next parameter (`${n}` in condition)."""
        if value is not None:
            self.args.append(value)
            condition = condition.format(n=len(self.args))
        self.conditions.append(condition)

    def sql(self, select: str) -> tuple[str, list[Any]]:
        """select with the conditions, newest first, limited."""
        where = f" WHERE {' AND '.join(self.conditions)}" if self.conditions else ""
        limit = f" ORDER BY {self.id_column} DESC LIMIT ${len(self.args) + 1}"
        return select + where + limit, [*self.args, self.limit]


async def list_workspaces(
    conn: Conn,
    *,
    organization_id: int | None = None,
    plan: str | None = None,
    limit: int = 100,
    after: int | None = None,
) -> list[dict[str, Any]]:
    """Workspaces, optionally of one organization or plan."""
    page = Page(limit, after, "w.id")
    if organization_id is not None:
        page.where("w.organization_id = ${n}", organization_id)
    if plan is not None:
        page.where("w.plan = ${n}", plan)
    sql, args = page.sql(f"SELECT {_WORKSPACE} FROM workspaces w")
    return [dict(r) for r in await conn.fetch(sql, *args)]


async def workspace(conn: Conn, workspace_id: int) -> dict[str, Any]:
    """One workspace with its plan's limits and features and how many of each thing it has."""
    row = await conn.fetchrow(
        f"SELECT {_WORKSPACE}, p.max_days AS plan_max_days,"
        " ARRAY(SELECT DISTINCT unnest(p.features || w.extra_features) ORDER BY 1) AS features,"
        " (SELECT count(*) FROM links WHERE workspace_id = w.id) AS links,"
        " (SELECT count(*) FROM api_keys WHERE workspace_id = w.id AND revoked_at IS NULL"
        "   AND (expires_at IS NULL OR expires_at > now())) AS active_api_keys,"
        " (SELECT count(*) FROM embed_tokens WHERE workspace_id = w.id AND revoked_at IS NULL"
        "   AND expires_at > now()) AS active_embed_tokens,"
        " (SELECT count(*) FROM memberships WHERE workspace_id = w.id) AS members"
        " FROM workspaces w JOIN plans p ON p.code = w.plan WHERE w.id = $1",
        workspace_id,
    )
    if row is None:
        raise errors.not_found(f"workspace {workspace_id}")
    return dict(row)


async def list_api_keys(
    conn: Conn,
    *,
    workspace_id: int | None = None,
    include_inactive: bool = False,
    limit: int = 100,
    after: int | None = None,
) -> list[dict[str, Any]]:
    """API keys (active ones unless include_inactive), optionally of one workspace."""
    page = Page(limit, after)
    if workspace_id is not None:
        page.where("workspace_id = ${n}", workspace_id)
    if not include_inactive:
        page.where("revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())")
    sql, args = page.sql(f"SELECT {_API_KEY} FROM api_keys")
    return [dict(r) for r in await conn.fetch(sql, *args)]


async def api_key(conn: Conn, key_id: int) -> dict[str, Any]:
    """One API key (never the key or its hash)."""
    row = await conn.fetchrow(f"SELECT {_API_KEY} FROM api_keys WHERE id = $1", key_id)
    if row is None:
        raise errors.not_found(f"API key {key_id}")
    return dict(row)


async def list_links(
    conn: Conn,
    *,
    workspace_id: int | None = None,
    domain: str | None = None,
    limit: int = 100,
    after: int | None = None,
) -> list[dict[str, Any]]:
    """Links, optionally of one workspace or domain."""
    page = Page(limit, after)
    if workspace_id is not None:
        page.where("workspace_id = ${n}", workspace_id)
    if domain is not None:
        page.where("domain = ${n}", domain.lower())
    sql, args = page.sql(f"SELECT {_LINK} FROM links")
    return [dict(r) for r in await conn.fetch(sql, *args)]


async def link(conn: Conn, link_id: int) -> dict[str, Any]:
    """One link with the names of its campaign, folder and tags and its rules' count."""
    row = await conn.fetchrow(
        f"SELECT {_LINK},"
        " (SELECT name FROM campaigns c WHERE c.id = l.campaign_id) AS campaign,"
        " (SELECT name FROM folders f WHERE f.id = l.folder_id) AS folder,"
        " ARRAY(SELECT t.name FROM link_tags lt JOIN tags t ON t.id = lt.tag_id"
        "   WHERE lt.link_id = l.id ORDER BY t.name) AS tags,"
        " (SELECT count(*) FROM link_rules r WHERE r.link_id = l.id) AS rules"
        " FROM links l WHERE id = $1",
        link_id,
    )
    if row is None:
        raise errors.not_found(f"link {link_id}")
    return dict(row)
