"""Appending to a workspace's audit log: hash-chained entries, one append at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg

from services import request_context
from services.auditlog.chain import GENESIS, Entry, link_hash
from services.telemetry import measure

OUTCOMES = ("success", "denied", "failure")

_LOCK_HEAD = """
INSERT INTO audit_chain_heads (workspace_id, seq, hash) VALUES ($1, 0, $2)
ON CONFLICT (workspace_id) DO NOTHING
"""
_READ_HEAD = "SELECT seq, hash FROM audit_chain_heads WHERE workspace_id = $1 FOR UPDATE"
_INSERT = """
INSERT INTO audit_log (workspace_id, seq, created_at, actor, action, target, outcome,
                       request_id, source_address, prev_hash, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
RETURNING id
"""
_MOVE_HEAD = "UPDATE audit_chain_heads SET seq = $2, hash = $3 WHERE workspace_id = $1"


@asynccontextmanager
async def transaction(
    pg: asyncpg.Pool | asyncpg.Connection,
) -> AsyncIterator[asyncpg.Connection]:
    """A transaction on pg (a savepoint when a Connection is already inside one)."""
    if isinstance(pg, asyncpg.Pool):
        async with pg.acquire() as conn, conn.transaction():
            yield conn
    else:
        async with pg.transaction():
            yield pg


async def append(
    pg: asyncpg.Pool | asyncpg.Connection,
    *,
    workspace_id: int,
    actor: str,
    action: str,
    target: str,
    outcome: str = "success",
    request_id: str = "",
    source_address: str = "",
) -> Entry:
    """Append one entry to workspace_id's audit log; returns it as stored (id, seq, time, hash).

    request_id and source_address default to those of the RPC being served (the gateway's
    X-Request-Id and client address), when there is one. Given a Connection inside a
    transaction, the entry commits (or rolls back) with it.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    ctx = request_context.current()
    async with transaction(pg) as conn:
        # The head row is the per-workspace lock: concurrent appends queue on it.
        await conn.execute(_LOCK_HEAD, workspace_id, GENESIS)
        head = await conn.fetchrow(_READ_HEAD, workspace_id)
        seq = head["seq"] + 1
        prev_hash = bytes(head["hash"])
        entry = Entry(
            workspace_id=workspace_id,
            seq=seq,
            # Taken under the lock, so times never run backwards along the chain.
            created_at=datetime.now(UTC),
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            request_id=request_id or ctx.request_id,
            source_address=source_address or ctx.source_address,
            prev_hash=prev_hash,
        )
        digest = link_hash(prev_hash, entry)
        entry_id = await conn.fetchval(
            _INSERT,
            workspace_id,
            seq,
            entry.created_at,
            entry.actor,
            entry.action,
            entry.target,
            entry.outcome,
            entry.request_id,
            entry.source_address,
            prev_hash,
            digest,
        )
        await conn.execute(_MOVE_HEAD, workspace_id, seq, digest)
    measure.audit_appended()
    return replace(entry, hash=digest, id=entry_id)


# What callers that do not need the stored entry call.
record = append
