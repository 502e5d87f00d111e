"""`audit verify`: walk a workspace's chain from the first entry and report the first break."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from services.audit.listing import to_message
from services.auditlog.chain import Entry, Walker
from services.telemetry import measure

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
    walker = Walker()
    problem = None
    culprit: Entry | None = None
    recent: dict[int, Entry] = {}  # the last two entries: a problem names one of them
    async with pg.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        head_row = await conn.fetchrow(
            "SELECT seq, hash FROM audit_chain_heads WHERE workspace_id = $1", workspace_id
        )
        head = (head_row["seq"], bytes(head_row["hash"])) if head_row else None
        async for entry in _entries(conn, workspace_id):
            recent = {seq: e for seq, e in recent.items() if seq >= entry.seq - 1}
            recent[entry.seq] = entry
            problem = walker.step(entry)
            if problem is not None:
                break
        else:
            problem = walker.finish(head)
    measure.audit_verified(problem is None)
    if problem is not None and problem.kind == "altered":
        culprit = recent.get(problem.seq)
    result: dict[str, Any] = {
        "workspace_id": workspace_id,
        "ok": problem is None,
        "checked": walker.checked,
        "head": {"seq": head[0], "hash": head[1].hex()} if head else None,
        "problem": None,
    }
    if problem is not None:
        found = problem.as_dict()
        if culprit is not None:
            found["entry"] = _entry_dict(culprit)
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
