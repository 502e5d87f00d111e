"""What a feed request asks for: filters (a campaign becomes its links), limit and cursor."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import asyncpg

from services import errors, protos

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
KINDS = frozenset({"click", "lead", "sale"})
_CURSOR = re.compile(r"^\d{1,20}-\d{1,20}$")


@dataclass(frozen=True)
class Filters:
    """Which events of the workspace a request wants."""

    link_ids: frozenset[int] | None
    kind: str

    def match(self, event: dict[str, Any]) -> bool:
        """True when event passes every filter."""
        if self.kind and event.get("kind") != self.kind:
            return False
        return self.link_ids is None or event.get("link_id") in self.link_ids


async def resolve_filters(
    pg: asyncpg.Pool | None, workspace_id: int, request: protos.live_pb2.LiveRequest
) -> Filters:
    """Validated filters of request; a campaign becomes the set of its links. A link or
    campaign outside the workspace is NOT_FOUND (without pg, for tests of the feed alone, a
    link id is taken as it is)."""
    kind = request.kind.strip().lower()
    if kind and kind not in KINDS:
        raise errors.invalid_argument("kind", "kind must be click, lead or sale")
    link_ids: set[int] | None = None
    if request.HasField("link_id"):
        if request.link_id <= 0:
            raise errors.invalid_argument("link_id", "link_id must be a positive integer")
        if pg is not None:
            await _check_link(pg, workspace_id, request.link_id)
        link_ids = {request.link_id}
    if request.HasField("campaign_id"):
        if pg is None:
            raise errors.unavailable("campaign filter needs PostgreSQL")
        in_campaign = await _campaign_links(pg, workspace_id, request.campaign_id)
        link_ids = in_campaign if link_ids is None else link_ids & in_campaign
    return Filters(None if link_ids is None else frozenset(link_ids), kind)


async def _check_link(pg: asyncpg.Pool, workspace_id: int, link_id: int) -> None:
    found = await pg.fetchval(
        "SELECT 1 FROM links WHERE workspace_id = $1 AND id = $2", workspace_id, link_id
    )
    if found is None:
        raise errors.not_found(f"link {link_id}", "link_id", in_workspace=True)


async def _campaign_links(pg: asyncpg.Pool, workspace_id: int, campaign_id: int) -> set[int]:
    rows = await pg.fetch(
        "SELECT c.id AS campaign, l.id AS link FROM campaigns c"
        " LEFT JOIN links l ON l.campaign_id = c.id AND l.workspace_id = c.workspace_id"
        " WHERE c.workspace_id = $1 AND c.id = $2",
        workspace_id,
        campaign_id,
    )
    if not rows:
        raise errors.not_found(f"campaign {campaign_id}", "campaign_id", in_workspace=True)
    return {row["link"] for row in rows if row["link"] is not None}


def request_limit(request: protos.live_pb2.LiveRequest) -> int:
    """The request's page size, checked (DEFAULT_LIMIT when absent)."""
    if not request.HasField("limit"):
        return DEFAULT_LIMIT
    if not 1 <= request.limit <= MAX_LIMIT:
        raise errors.invalid_argument("limit", f"limit must be between 1 and {MAX_LIMIT}")
    return request.limit


def request_cursor(request: protos.live_pb2.LiveRequest) -> str:
    """The request's cursor, checked to be one of this feed ('' when absent)."""
    cursor = request.cursor.strip()
    if cursor and not _CURSOR.match(cursor):
        raise errors.invalid_argument("cursor", "cursor is not a cursor of this feed")
    return cursor
