"""Revoking a grant (API key, session, embed token) and auditing it in one transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg

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
