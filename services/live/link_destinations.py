"""The destination of each link a click names, from PostgreSQL, remembered for a few seconds.

Only links found are remembered (a link created a moment ago is never refused); a link deleted
or moved is still accepted for at most `ttl` seconds, like a revoked key under the auth cache.
"""

from __future__ import annotations

import time

import asyncpg

_MAX_ENTRIES = 100_000


class LinkDirectory:
    """workspace + link id -> destination URL, for the links of that workspace only."""

    def __init__(self, pg: asyncpg.Pool, ttl: float) -> None:
        self._pg = pg
        self._ttl = ttl
        self._known: dict[tuple[int, int], tuple[float, str]] = {}

    async def destinations(self, workspace_id: int, link_ids: set[int]) -> dict[int, str]:
        """The destinations of those of link_ids that are links of the workspace."""
        now = time.monotonic()
        found: dict[int, str] = {}
        missing = []
        for link_id in link_ids:
            hit = self._known.get((workspace_id, link_id))
            if hit is not None and hit[0] > now:
                found[link_id] = hit[1]
            else:
                missing.append(link_id)
        if missing:
            rows = await self._pg.fetch(
                "SELECT id, destination_url FROM links"
                " WHERE workspace_id = $1 AND id = ANY($2::bigint[])",
                workspace_id,
                missing,
            )
            if len(self._known) + len(rows) > _MAX_ENTRIES:
                self._known.clear()
            for row in rows:
                found[row["id"]] = row["destination_url"]
                self._known[(workspace_id, row["id"])] = (now + self._ttl, row["destination_url"])
        return found
