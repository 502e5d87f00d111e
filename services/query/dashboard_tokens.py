"""Dashboard links: minting, listing and revoking the signed, read-only tokens of /dashboard.

A row in `dashboard_tokens` describes each token (the token itself is never stored); creation
and revocation are audited (`dashboard.created`, `dashboard.revoked`). The auth resolver
(services/auth/resolver.py) honours a token while its row is neither revoked nor expired.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services import errors, field_rules, protos
from services.auditlog.recorder import record, transaction
from services.auditlog.revocations import Revocable, owned, revoke_owned
from services.auth import dashboard_tokens as tokens
from services.auth.signing import Signer
from services.timerange import utc_iso

DEFAULT_TTL_SECONDS = 7 * 86400
MIN_TTL_SECONDS, MAX_TTL_SECONDS = field_rules.bounds(
    protos.dashboard_pb2.CreateDashboardTokenRequest.DESCRIPTOR, "ttl_seconds"
)
MAX_LABEL = 200
PAGE_PATH = "/dashboard"

_COLUMNS = "id, workspace_id, label, created_by, created_at, expires_at, revoked_at"
_DASHBOARD_TOKENS = Revocable(
    "dashboard_tokens", _COLUMNS, "dashboard.revoked", "dashboard_token:{id}", "dashboard token"
)


def _describe(row: asyncpg.Record, token: str = "") -> dict[str, Any]:
    found = {
        "id": row["id"],
        "workspace_id": row["workspace_id"],
        "label": row["label"],
        "created_by": row["created_by"],
        "created_at": utc_iso(row["created_at"]),
        "expires_at": utc_iso(row["expires_at"]),
        "revoked_at": utc_iso(row["revoked_at"]),
    }
    if token:
        found["token"] = token
        found["dashboard_path"] = f"{PAGE_PATH}#token={token}"
    return found


def to_message(token: dict[str, Any]) -> protos.dashboard_pb2.DashboardToken:
    """The API form of a token description (from `create`, `revoke` or `list_tokens`)."""
    return protos.dashboard_pb2.DashboardToken(
        id=token["id"],
        token=token.get("token"),
        label=token["label"],
        created_by=token["created_by"],
        created_at=token["created_at"] or "",
        expires_at=token["expires_at"] or "",
        dashboard_path=token.get("dashboard_path"),
        revoked_at=token["revoked_at"],
    )


async def create(
    pg: asyncpg.Pool,
    signer: Signer,
    *,
    workspace_id: int,
    actor: str,
    ttl_seconds: int | None = None,
    label: str = "",
) -> dict[str, Any]:
    """Mint a dashboard token of the workspace; it is returned once, never stored."""
    ttl = DEFAULT_TTL_SECONDS if ttl_seconds is None else ttl_seconds
    if not MIN_TTL_SECONDS <= ttl <= MAX_TTL_SECONDS:
        raise errors.invalid_argument(
            "ttl_seconds",
            f"ttl_seconds must be between {MIN_TTL_SECONDS} and {MAX_TTL_SECONDS}",
        )
    label = label.strip()
    if len(label) > MAX_LABEL or not label.isprintable():
        raise errors.invalid_argument(
            "label", f"label must be printable and at most {MAX_LABEL} characters"
        )
    if await pg.fetchval("SELECT 1 FROM workspaces WHERE id = $1", workspace_id) is None:
        raise errors.not_found(f"workspace {workspace_id}")
    expires = datetime.now(UTC) + timedelta(seconds=ttl)
    async with transaction(pg) as tx:
        row = await tx.fetchrow(
            "INSERT INTO dashboard_tokens (workspace_id, label, created_by, expires_at)"
            f" VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}",
            workspace_id,
            label,
            actor,
            expires,
        )
        await record(
            tx,
            workspace_id=workspace_id,
            actor=actor,
            action="dashboard.created",
            target=f"dashboard_token:{row['id']} ttl:{ttl}s",
        )
    return _describe(row, tokens.mint(signer, row["id"], workspace_id, ttl))


async def revoke(
    pg: asyncpg.Pool, token_id: int, *, actor: str, workspace_id: int | None = None
) -> dict[str, Any]:
    """Revoke a token (of workspace_id, when given); 404 when there is no such token."""
    return _describe(
        await revoke_owned(pg, _DASHBOARD_TOKENS, token_id, actor=actor, workspace_id=workspace_id)
    )


async def list_tokens(
    pg: asyncpg.Pool, workspace_id: int, include_inactive: bool = False
) -> list[dict[str, Any]]:
    """The workspace's tokens, newest first (only honoured ones unless include_inactive)."""
    return [
        _describe(r) for r in await owned(pg, _DASHBOARD_TOKENS, workspace_id, include_inactive)
    ]
