"""Revoking a grant (API key, session, embed or dashboard token) and auditing it in one
transaction; the workspace's grants of a table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg

from services import errors
from services.auditlog.recorder import record, transaction

# The workspaces whose logs record a revocation, given the revoked row.
AuditedIn = Callable[[asyncpg.Connection, asyncpg.Record], Awaitable[Sequence[int]]]


@dataclass(frozen=True)
class Revocable:
    """A table of revocable grants, the audit action of a revocation and how it names its target."""

    table: str
    # Columns of the revoked row handed back; `target` is formatted with them.
    returning: str
    action: str
    target: str
    # What a row is called in a not-found error.
    noun: str = "grant"


async def _own_workspace(tx: asyncpg.Connection, row: asyncpg.Record) -> Sequence[int]:
    return (row["workspace_id"],)


async def revoke(
    pg: asyncpg.Pool | asyncpg.Connection,
    grants: Revocable,
    row_id: int,
    *,
    actor: str,
    audited_in: AuditedIn = _own_workspace,
) -> asyncpg.Record | None:
    """Revoke an active row and audit it (in its own workspace by default); None if not active."""
    async with transaction(pg) as tx:
        row = await tx.fetchrow(
            f"UPDATE {grants.table} SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL"
            f" RETURNING {grants.returning}",
            row_id,
        )
        if row is None:
            return None
        for workspace_id in await audited_in(tx, row):
            await record(
                tx,
                workspace_id=workspace_id,
                actor=actor,
                action=grants.action,
                target=grants.target.format_map(row),
            )
    return row


async def revoke_owned(
    pg: asyncpg.Pool,
    grants: Revocable,
    row_id: int,
    *,
    actor: str,
    workspace_id: int | None = None,
) -> asyncpg.Record:
    """Revoke a row (of workspace_id, when given) unless it already is; the row as it stands
    after (its `returning` columns, which include workspace_id and revoked_at). 404 when there
    is no such row."""
    async with transaction(pg) as tx:
        row = await tx.fetchrow(
            f"SELECT {grants.returning} FROM {grants.table} WHERE id = $1 FOR UPDATE", row_id
        )
        if row is None or (workspace_id is not None and row["workspace_id"] != workspace_id):
            raise errors.not_found(f"{grants.noun} {row_id}")
        if row["revoked_at"] is None:
            row = await revoke(tx, grants, row_id, actor=actor) or row
    return row


async def owned(
    pg: asyncpg.Pool, grants: Revocable, workspace_id: int, include_inactive: bool = False
) -> list[asyncpg.Record]:
    """The workspace's rows, newest first (only those honoured now, neither revoked nor expired,
    unless include_inactive)."""
    active = "" if include_inactive else " AND revoked_at IS NULL AND expires_at > now()"
    return list(
        await pg.fetch(
            f"SELECT {grants.returning} FROM {grants.table}"
            f" WHERE workspace_id = $1{active} ORDER BY id DESC",
            workspace_id,
        )
    )
