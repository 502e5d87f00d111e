"""The raw click-event export route `POST /v1/analytics`: clicks by date range, cursor-paginated."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from services import cursor, errors, field_rules
from services.auth.principal import Principal
from services.protos import query_pb2 as q
from services.query import listings
from services.query.listings import ListQuery
from services.query.params import optional
from services.stores.clickhouse import ClickHouse
from services.timerange import local_midnight

DEFAULT_LIMIT = 1000
MAX_LIMIT = field_rules.maximum(q.RawEventsRequest.DESCRIPTOR, "limit")
COLUMNS = (
    "event_id", "timestamp", "link_id", "device", "os", "browser", "country", "referrer", "is_bot",
)  # fmt: skip


def _day(field: str, value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise errors.invalid_argument(field, f"{field} must be a date as YYYY-MM-DD") from exc


async def raw_events(
    ch: ClickHouse, pg: asyncpg.Pool, principal: Principal, request: q.RawEventsRequest
) -> q.RawEventsResponse:
    """Click events of [start, end] (inclusive dates in the workspace's zone) after the cursor;
    bot clicks only with include_bots, as on every analytics route."""
    if not request.start:
        raise errors.invalid_argument("start", "start is required (YYYY-MM-DD)")
    if not request.end:
        raise errors.invalid_argument("end", "end is required (YYYY-MM-DD)")
    first, last = _day("start", request.start), _day("end", request.end)
    if last < first:
        raise errors.invalid_argument("end", "end must not be before start")
    if (last - first).days + 1 > principal.max_days:
        raise errors.invalid_argument(
            "start",
            f"the range spans {(last - first).days + 1} days;"
            f" this plan allows {principal.max_days}",
        )
    limit = optional(request, "limit")
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise errors.invalid_argument("limit", f"limit must be between 1 and {MAX_LIMIT}")
    workspace_id = optional(request, "workspace_id") or principal.workspace_id
    if workspace_id not in principal.workspace_ids:
        raise errors.not_found(f"workspace {workspace_id}")
    workspace = await pg.fetchrow(
        "SELECT organization_id, timezone FROM workspaces WHERE id = $1", workspace_id
    )
    tz = ZoneInfo(workspace["timezone"])
    url_id = optional(request, "url_id")
    links_filter = None
    if url_id is not None:
        if not await pg.fetchval(
            "SELECT 1 FROM links WHERE id = $1 AND workspace_id = $2", url_id, workspace_id
        ):
            raise errors.not_found(f"url {url_id}")
        links_filter = (url_id,)
    after = cursor.decode_position(request.cursor)
    rows = await listings.run_list(
        ch,
        ListQuery(
            kind="clicks",
            workspace_id=workspace_id,
            start=local_midnight(first, tz),
            end=local_midnight(last + timedelta(days=1), tz),
            columns=COLUMNS,
            limit=limit + 1,
            link_ids=links_filter,
            include_bots=request.include_bots,
            after=after,
        ),
    )
    page, more = rows[:limit], len(rows) > limit
    links = {
        r["id"]: r
        for r in await pg.fetch(
            "SELECT id, domain, slug FROM links WHERE workspace_id = $1 AND id = ANY($2::bigint[])",
            workspace_id,
            sorted({row["link_id"] for row in page}),
        )
    }
    data = [
        q.RawClickEvent(
            id=row["event_id"],
            workspace_id=workspace_id,
            organization_id=workspace["organization_id"],
            url_id=row["link_id"],
            domain=links[row["link_id"]]["domain"] if row["link_id"] in links else "",
            url_slug=links[row["link_id"]]["slug"] if row["link_id"] in links else "",
            device_type=row["device"],
            platform=row["os"],
            browser=row["browser"],
            country=row["country"],
            referrer=row["referrer"],
            created_at=datetime.fromtimestamp(row["timestamp"], UTC).astimezone(tz).isoformat(),
            is_bot=bool(row["is_bot"]),
        )
        for row in page
    ]
    last_row = page[-1] if page else None
    next_cursor = (
        cursor.encode([last_row["timestamp"], last_row["event_id"]]) if more and last_row else None
    )
    return q.RawEventsResponse(data=data, next_cursor=next_cursor)
