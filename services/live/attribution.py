"""Finding the click a lead or sale converts: Redis first (recent clicks), then ClickHouse
(services.live.lookups)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson
from redis.asyncio import Redis

from services import errors
from services.live import lookups, rows, scripts
from services.live.redis_failures import REDIS_DOWN
from services.live.stream import Keys, cache_days, click_slot
from services.live.tables import ATTRIBUTED, CLICK_COLUMNS
from services.stores.clickhouse import ClickHouse

# KEYS: click rows strings (`Keys.click_rows`); ARGV[1]: a click id. The row of that id, or
# false: rows are JSON arrays beginning with the event id, one a line.
_FIND_ROW = """
local head = '[' .. ARGV[1] .. ','
for _, key in ipairs(KEYS) do
  local text = redis.call('GET', key)
  if text then
    local at = 1
    if string.sub(text, 1, #head) ~= head then
      at = string.find(text, '\\n' .. head, 1, true)
      if at then at = at + 1 end
    end
    if at then return string.sub(text, at, string.find(text, '\\n', at, true) - 1) end
  end
end
return false
"""


def click_cache_value(row: dict[str, Any]) -> bytes:
    """What a lead caches of its click for its customer's sales: the click's id and the
    attributed dimensions (a click itself caches its encoded table row)."""
    return orjson.dumps({"click_id": row["event_id"], **{c: row[c] for c in ATTRIBUTED}})


class Attribution:
    """Resolves the click (id and dimensions) of a lead or a sale within one workspace."""

    def __init__(self, redis: Redis, ch: ClickHouse, keys: Keys, cache_seconds: int) -> None:
        self.redis = redis
        self.ch = ch
        self.keys = keys
        self.cache_seconds = cache_seconds

    async def _cached(
        self, hash_of: Callable[[date], str], field: str, row_keys: Sequence[str] = ()
    ) -> dict[str, Any] | None:
        """The field in the newest day's hash that has it, else the row of click id field in
        the click rows strings row_keys."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for day in cache_days(datetime.now(UTC), self.cache_seconds):
                    pipe.hget(hash_of(day), field)
                if row_keys:
                    scripts.queue(pipe, _FIND_ROW, row_keys, [field])
                found = await scripts.execute(pipe)
        except REDIS_DOWN as exc:
            raise errors.unavailable(f"the event store (Redis) is unreachable: {exc}") from exc
        failed = next((r for r in found if isinstance(r, Exception)), None)
        if failed is not None:
            raise errors.unavailable(f"the event store (Redis) failed: {failed}")
        raw = next((r for r in found if r is not None), None)
        if raw is None:
            return None
        if raw[:1] == b"{":  # a lead caches its click's id and dimensions
            return dict(orjson.loads(raw))
        row = dict(zip(CLICK_COLUMNS, rows.decode("click", raw), strict=True))  # a click's row
        return {"click_id": row["event_id"], **{c: row[c] for c in ATTRIBUTED}}

    async def click(self, workspace_id: int, click_id: int, field: str) -> dict[str, Any]:
        """click_id and the dimensions of a click of the workspace; 404 naming field if none."""
        slots = [click_slot(click_id) - n for n in (0, 1) if click_slot(click_id) - n >= 0]
        cached = await self._cached(
            lambda day: self.keys.clicks(workspace_id, day),
            str(click_id),
            [self.keys.click_rows(workspace_id, slot) for slot in slots],
        )
        if cached is not None:
            return cached
        row = await lookups.click_dimensions(self.ch, workspace_id, click_id, ATTRIBUTED)
        if row is None:
            raise errors.not_found(f"click {click_id}", field, in_workspace=True)
        return {"click_id": click_id, **dict(zip(ATTRIBUTED, row, strict=True))}

    async def customer(self, workspace_id: int, customer_id: str, field: str) -> dict[str, Any]:
        """The click of the customer's latest lead in the workspace; 404 naming field if none."""
        cached = await self._cached(lambda day: self.keys.customers(workspace_id, day), customer_id)
        if cached is not None:
            return cached
        row = await lookups.latest_lead(self.ch, workspace_id, customer_id, ATTRIBUTED)
        if row is None:
            raise errors.not_found(
                "lead", field, message=f"no lead of customer {customer_id!r} in this workspace"
            )
        return dict(zip(("click_id", *ATTRIBUTED), row, strict=True))
