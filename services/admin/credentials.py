"""API keys and sessions: minted here, shown once, stored as hashes; each change audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services import errors
from services.admin import checks
from services.auditlog.recorder import record, transaction
from services.auditlog.revocations import Revocable, revoke
from services.auth.tokens import (
    KNOWN_SCOPES,
    display_prefix,
    new_api_key,
    new_session_token,
    token_hash,
)

API_KEYS = Revocable("api_keys", "id, workspace_id", "apikey.revoked", "api_key:{id}")
SESSIONS = Revocable("sessions", "id, user_id", "session.revoked", "session:{id} user:{user_id}")


async def create_api_key(
    conn: asyncpg.Connection | asyncpg.Pool,
    workspace_id: int,
    scopes: list[str],
    name: str = "",
    expires_at: datetime | None = None,
    *,
    actor: str = "system",
) -> dict[str, Any]:
    """A new key for workspace_id with scopes; the returned `key` is never stored or shown again."""
    unknown = sorted(set(scopes) - set(KNOWN_SCOPES))
    if unknown or not scopes:
        raise errors.invalid_argument(
            "scopes", f"unknown or missing scopes {unknown}; known: {', '.join(KNOWN_SCOPES)}"
        )
    await checks.workspace(conn, workspace_id)
    key = new_api_key()
    async with transaction(conn) as tx:
        row = await tx.fetchrow(
            "INSERT INTO api_keys (workspace_id, name, prefix, key_hash, scopes, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at",
            workspace_id,
            name,
            display_prefix(key),
            token_hash(key),
            sorted(set(scopes)),
            expires_at,
        )
        await record(
            tx,
            workspace_id=workspace_id,
            actor=actor,
            action="apikey.created",
            target=f"api_key:{row['id']}",
        )
    return {
        "id": row["id"],
        "workspace_id": workspace_id,
        "key": key,
        "prefix": display_prefix(key),
        "scopes": sorted(set(scopes)),
        "created_at": row["created_at"].isoformat(),
    }


async def revoke_api_key(
    conn: asyncpg.Connection | asyncpg.Pool, key_id: int, *, actor: str = "system"
) -> bool:
    """Revoke a key; True if it was active."""
    return await revoke(conn, API_KEYS, key_id, actor=actor) is not None


async def create_session(
    conn: asyncpg.Connection | asyncpg.Pool,
    email: str,
    workspace_id: int,
    role: str = "owner",
    ttl: timedelta = timedelta(days=7),
    *,
    actor: str = "system",
) -> dict[str, Any]:
    """A session for the user with email (created if new), a member of workspace_id with role."""
    async with transaction(conn) as tx:
        user_id = await tx.fetchval(
            "INSERT INTO users (email) VALUES ($1)"
            " ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email RETURNING id",
            email,
        )
        await tx.execute(
            "INSERT INTO memberships (user_id, workspace_id, role) VALUES ($1, $2, $3)"
            " ON CONFLICT (user_id, workspace_id) DO UPDATE SET role = EXCLUDED.role",
            user_id,
            workspace_id,
            role,
        )
        token = new_session_token()
        expires = datetime.now(UTC) + ttl
        session_id = await tx.fetchval(
            "INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ($1, $2, $3)"
            " RETURNING id",
            user_id,
            token_hash(token),
            expires,
        )
        await record(
            tx,
            workspace_id=workspace_id,
            actor=actor,
            action="session.created",
            target=f"session:{session_id} user:{user_id} role:{role}",
        )
    return {"id": session_id, "user_id": user_id, "token": token, "expires_at": expires.isoformat()}


async def _member_workspaces(tx: asyncpg.Connection, session: asyncpg.Record) -> list[int]:
    rows = await tx.fetch(
        "SELECT workspace_id FROM memberships WHERE user_id = $1 ORDER BY workspace_id",
        session["user_id"],
    )
    return [row["workspace_id"] for row in rows]


async def revoke_session(
    conn: asyncpg.Connection | asyncpg.Pool, session_id: int, *, actor: str = "system"
) -> bool:
    """Revoke a session; True if it was active. Audited in every workspace of its user."""
    revoked = await revoke(conn, SESSIONS, session_id, actor=actor, audited_in=_member_workspaces)
    return revoked is not None
