"""Reading a workspace's audit log: filters by actor, action and time, newest first, by pages."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

from services import cursor, errors, field_rules, protos
from services.auditlog.chain import Entry

DEFAULT_LIMIT = 50
MAX_LIMIT = field_rules.maximum(protos.audit_pb2.ListAuditLogRequest.DESCRIPTOR, "limit")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


def parse_bound(field: str, text: str, *, end: bool = False) -> datetime | None:
    """An ISO date or date-time (UTC unless it has an offset); a date `end` includes its day."""
    text = text.strip()
    if not text:
        return None
    try:
        if _DATE.match(text):
            day = date.fromisoformat(text) + (timedelta(days=1) if end else timedelta())
            return datetime.combine(day, time(), UTC)
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise errors.invalid_argument(
            field, f"{field} must be an ISO-8601 date or date-time"
        ) from exc
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def to_message(entry: Entry) -> protos.audit_pb2.AuditEntry:
    """The API form of an entry."""
    return protos.audit_pb2.AuditEntry(
        id=entry.id,
        actor=entry.actor,
        action=entry.action,
        target=entry.target,
        time=entry.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        request_id=entry.request_id or None,
        source_address=entry.source_address or None,
        outcome=entry.outcome,
        hash=entry.hash.hex(),
    )


async def list_entries(
    pg: asyncpg.Pool, workspace_id: int, request: protos.audit_pb2.ListAuditLogRequest
) -> protos.audit_pb2.ListAuditLogResponse:
    """One page of the workspace's entries matching the request's filters, newest first."""
    limit = request.limit if request.HasField("limit") else DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise errors.invalid_argument("limit", f"limit must be between 1 and {MAX_LIMIT}")
    start = parse_bound("start", request.start)
    finish = parse_bound("end", request.end, end=True)
    if start and finish and finish <= start:
        raise errors.invalid_argument("end", "end must be after start")
    conditions = ["workspace_id = $1"]
    args: list[Any] = [workspace_id]

    def where(sql: str, value: object) -> None:
        args.append(value)
        conditions.append(sql.format(f"${len(args)}"))

    if request.actor:
        where("actor = {}", request.actor)
    if request.action:
        where("action = {}", request.action)
    if start:
        where("created_at >= {}", start)
    if finish:
        where("created_at < {}", finish)
    position = cursor.decode(request.cursor)
    if position is not None:
        if len(position) != 1 or not isinstance(position[0], int):
            raise errors.invalid_argument("cursor", "cursor is not a cursor this API returned")
        where("seq < {}", position[0])
    args.append(limit + 1)
    rows = await pg.fetch(
        f"SELECT * FROM audit_log WHERE {' AND '.join(conditions)}"
        f" ORDER BY seq DESC LIMIT ${len(args)}",
        *args,
    )
    entries = [Entry.from_row(r) for r in rows[:limit]]
    next_cursor = cursor.encode([entries[-1].seq]) if len(rows) > limit else None
    return protos.audit_pb2.ListAuditLogResponse(
        entries=[to_message(e) for e in entries], next_cursor=next_cursor
    )
