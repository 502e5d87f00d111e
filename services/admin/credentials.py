"""API keys and sessions: minted here, shown once, stored as hashes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.auth.tokens import (
    KNOWN_SCOPES,
    display_prefix,
    new_api_key,
    new_session_token,
    token_hash,
)


async def create_api_key(
    conn: asyncpg.Connection | asyncpg.Pool,
    workspace_id: int,
    scopes: list[str],
    name: str = "",
    expires_at: datetime | None = None,
) -> dict[str, Any]:
    """A new key for workspace_id with scopes; the returned `key` is never stored or shown again."""
    unknown = sorted(set(scopes) - set(KNOWN_SCOPES))
    if unknown or not scopes:
        raise ValueError(f"unknown or missing scopes {unknown}; known: {', '.join(KNOWN_SCOPES)}")
    if await conn.fetchval("SELECT 1 FROM workspaces WHERE id = $1", workspace_id) is None:
        raise ValueError(f"workspace {workspace_id} not found")
    key = new_api_key()
    row = await conn.fetchrow(
        "INSERT INTO api_keys (workspace_id, name, prefix, key_hash, scopes, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at",
        workspace_id,
        name,
        display_prefix(key),
        token_hash(key),
        sorted(set(scopes)),
        expires_at,
    )
    return {
        "id": row["id"],
        "workspace_id": workspace_id,
        "key": key,
        "prefix": display_prefix(key),
        "scopes": sorted(set(scopes)),
        "created_at": row["created_at"].isoformat(),
    }


async def revoke_api_key(conn: asyncpg.Connection | asyncpg.Pool, key_id: int) -> bool:
    """Revoke a key; True if it was active."""
    done = await conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", key_id
    )
    return not done.endswith(" 0")


async def create_session(
    conn: asyncpg.Connection | asyncpg.Pool,
    email: str,
    workspace_id: int,
    role: str = "owner",
    ttl: timedelta = timedelta(days=7),
) -> dict[str, Any]:
    """A session for the user with email (created if new), a member of workspace_id with role."""
    user_id = await conn.fetchval(
        "INSERT INTO users (email) VALUES ($1)"
        " ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email RETURNING id",
        email,
    )
    await conn.execute(
        "INSERT INTO memberships (user_id, workspace_id, role) VALUES ($1, $2, $3)"
        " ON CONFLICT (user_id, workspace_id) DO UPDATE SET role = EXCLUDED.role",
        user_id,
        workspace_id,
        role,
    )
    token = new_session_token()
    expires = datetime.now(UTC) + ttl
    session_id = await conn.fetchval(
        "INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ($1, $2, $3) RETURNING id",
        user_id,
        token_hash(token),
        expires,
    )
    return {"id": session_id, "user_id": user_id, "token": token, "expires_at": expires.isoformat()}
