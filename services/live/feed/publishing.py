"""Appending accepted events to a workspace's feed stream (and its live stats)."""

from __future__ import annotations

import time

from redis.asyncio.client import Pipeline

from services.live import scripts, stats
from services.live.stats import KEY_PREFIX, stream_key
from services.partitions import DEFAULT_PARTITIONS

# Events kept per workspace (approximate trimming): about 5 MB at ~250 bytes an event.
STREAM_MAXLEN = 20_000
# An idle workspace's stream disappears after a day without events.
STREAM_TTL_SECONDS = 86_400


# KEYS[1]: the feed stream; ARGV: events to keep, TTL, the kind, the encoded rows (one a line),
# their number. One entry per batch: appending an entry per event cost Redis more than all the
# rest of accepting it. The entry takes the position after the last entry's last event (an
# entry without ``n`` holds one); the first entry of a stream takes the time and sequence 0.
_APPEND = """
local key, keep, kind, n = KEYS[1], tonumber(ARGV[1]), ARGV[3], tonumber(ARGV[5])
local ms, seq = nil, 0
local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1]
if last then
  local fields, held = last[2], 1
  for i = 1, #fields, 2 do
    if fields[i] == 'n' then held = tonumber(fields[i + 1]) end
  end
  local dash = string.find(last[1], '-', 1, true)
  ms = string.sub(last[1], 1, dash - 1)
  seq = tonumber(string.sub(last[1], dash + 1)) + held
else
  local now = redis.call('TIME')
  ms = now[1] .. string.format('%03d', math.floor(now[2] / 1000))
end
local id = ms .. '-' .. string.format('%d', seq)
if seq + n > keep then
  local floor = ms .. '-' .. string.format('%d', seq + n - keep)
  redis.call('XADD', key, 'MINID', '~', floor, id, 'k', kind, 'n', n, 'r', ARGV[4])
else
  redis.call('XADD', key, id, 'k', kind, 'n', n, 'r', ARGV[4])
end
redis.call('EXPIRE', key, ARGV[2])
return id
"""


def publish(
    pipe: Pipeline,
    workspace_id: int,
    kind: str,
    rows: bytes,
    stat_events: list[stats.StatEvent],
    *,
    prefix: str = KEY_PREFIX,
    partitions: int = DEFAULT_PARTITIONS,
    now: float | None = None,
) -> None:
    """Queue on pipe the commands adding events of one kind to the workspace's feed and live
    stats: rows are the events' encoded table rows (`services.live.rows`), one a line."""
    if not rows:
        return
    key = stream_key(workspace_id, prefix, partitions)
    count = rows.count(b"\n") + 1
    scripts.queue(pipe, _APPEND, [key], [STREAM_MAXLEN, STREAM_TTL_SECONDS, kind, rows, count])
    stats.record(pipe, key, stat_events, time.time() if now is None else now)
