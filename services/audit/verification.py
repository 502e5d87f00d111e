"""`audit verify`: walk a workspace's chain from the first entry and report the first break."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from services.audit.chain import Entry, verify
from services.audit.listing import to_message

_BATCH = 1000


async def _entries(conn: asyncpg.Connection, workspace_id: int) -> AsyncIterator[Entry]:
    last = 0
    while True:
        rows = await conn.fetch(
            "SELECT * FROM audit_log WHERE workspace_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            workspace_id,
            last,
            _BATCH,
        )
        for row in rows:
            yield Entry.from_row(row)
        if len(rows) < _BATCH:
            return
        last = rows[-1]["seq"]


async def verify_workspace(pg: asyncpg.Pool, workspace_id: int) -> dict[str, Any]:
    """Whether workspace_id's log is intact; if not, the first altered or removed entry."""
    async with pg.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        head_row = await conn.fetchrow(
            "SELECT seq, hash FROM audit_chain_heads WHERE workspace_id = $1", workspace_id
        )
        head = (head_row["seq"], bytes(head_row["hash"])) if head_row else None
        entries = [entry async for entry in _entries(conn, workspace_id)]
    checked, problem = verify(entries, head)
    result: dict[str, Any] = {
        "workspace_id": workspace_id,
        "ok": problem is None,
        "entries": len(entries),
        "checked": checked,
        "head": {"seq": head[0], "hash": head[1].hex()} if head else None,
        "problem": None,
    }
    if problem is not None:
        found = problem.as_dict()
        stored = next((e for e in entries if e.seq == problem.seq), None)
        if problem.kind == "altered" and stored is not None:
            found["entry"] = _entry_dict(stored)
        result["problem"] = found
    return result


def _entry_dict(entry: Entry) -> dict[str, Any]:
    message = to_message(entry)
    return {
        "id": message.id,
        "seq": entry.seq,
        "time": message.time,
        "actor": message.actor,
        "action": message.action,
        "target": message.target,
        "outcome": message.outcome,
        "request_id": message.request_id,
        "source_address": message.source_address,
        "hash": message.hash,
    }
