"""Event-id node ids leased from Redis, so that every process minting ids has its own.

One key per node id, `<prefix>:node:<id>`, holds `<holder> <expires_ms> <high_ms>`: who leases
it, until when (Redis clock), and the last id millisecond its holders reserved. A lease is taken
only when free or expired, renewed in the background, and given up at stop; a holder mints ids
only up to the millisecond it reserved, and the next holder starts after it, so a holder that
ran ahead of the clock (or crashed) can never be repeated. A process whose renewals fail stops
minting at its lease's end (UNAVAILABLE) until it holds a lease again; one that starts while
Redis is down serves, and leases once Redis answers. Every script touches one
key (Redis Cluster friendly).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services import errors
from services.config import Settings
from services.ids import NODE_IDS, RESERVED_NODE_IDS, EventIds, now_ms

log = logging.getLogger("linkpulse.node_lease")

# Seconds between tries while no lease is held or a renewal failed.
_RETRY_SECONDS = 1.0

# KEYS[1]: the node's key. ARGV: holder, ttl ms, the holder's clock (id ms), reserve ms.
# Returns {1, previous high, new high} when taken, {0, holder, expires ms} when held by another.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local high = 0
local value = redis.call('GET', KEYS[1])
if value then
  local holder, expires, h = string.match(value, '^(%S+) (%d+) (%d+)$')
  if holder and holder ~= ARGV[1] and tonumber(expires) > now then
    return {0, holder, expires}
  end
  if h then high = tonumber(h) end
end
local reserved = math.max(high, tonumber(ARGV[3])) + tonumber(ARGV[4])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. (now + tonumber(ARGV[2])) .. ' ' .. reserved)
return {1, high, reserved}
"""

# KEYS[1]: the node's key. ARGV: holder, ttl ms, high ms. Extends the lease and reserves up to
# high while the holder is the same (1), else 0: another process took the node id.
_RENEW = """
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local holder, expires, h = string.match(value, '^(%S+) (%d+) (%d+)$')
if holder ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local high = math.max(tonumber(h), tonumber(ARGV[3]))
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. (now + tonumber(ARGV[2])) .. ' ' .. high)
return 1
"""

# KEYS[1]: the node's key. ARGV: holder, last ms used. Frees the node id, keeping how far its
# ids went.
_RELEASE = """
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local holder, expires, h = string.match(value, '^(%S+) (%d+) (%d+)$')
if holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], '- 0 ' .. math.max(tonumber(ARGV[2]), 0))
return 1
"""


class NodeIdUnavailable(RuntimeError):
    """No node id could be leased: the one configured is held, or every one is."""


def node_key(prefix: str, node_id: int) -> str:
    """The Redis key of one node id's lease."""
    return f"{prefix}:node:{node_id}"


@dataclass(frozen=True)
class LeaseTiming:
    """How long a lease lives, how often it is renewed and how far ahead ids are reserved."""

    ttl_seconds: float

    @property
    def ttl_ms(self) -> int:
        """The lease's life in milliseconds."""
        return int(self.ttl_seconds * 1000)

    @property
    def renew_seconds(self) -> float:
        """Seconds between renewals: three tries within a lease's life."""
        return self.ttl_seconds / 3

    @property
    def reserve_ms(self) -> int:
        """How far past the clock (or the last id) a holder reserves milliseconds."""
        return 2 * self.ttl_ms


class LeasedIds:
    """Event ids of a leased node id: minting is refused while the lease may have ended."""

    def __init__(
        self, redis: Redis, prefix: str, timing: LeaseTiming, fixed_node: int | None
    ) -> None:
        self._prefix = prefix
        self._timing = timing
        self._fixed = fixed_node
        self._holder = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:12]}"
        self._ids: EventIds | None = None
        self._last_ms = -1  # the last millisecond of a node id held before
        self._valid_until = 0.0  # time.monotonic() past which the lease may have ended
        self._wake = asyncio.Event()
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    @property
    def node_id(self) -> int | None:
        """The node id held now (None before the first lease)."""
        return None if self._ids is None else self._ids.node_id

    @property
    def minting(self) -> bool:
        """True while a live lease lets this process mint ids."""
        return self._ids is not None and time.monotonic() < self._valid_until

    @property
    def holder(self) -> str:
        """This process's name in the lease keys."""
        return self._holder

    def _current(self) -> EventIds:
        ids = self._ids
        if ids is None or time.monotonic() >= self._valid_until:
            raise errors.unavailable(
                "this process holds no event-id node lease now (Redis unreachable?); "
                "events were not accepted: retry"
            )
        if (
            ids.ceiling_ms is not None
            and ids.last_ms > ids.ceiling_ms - self._timing.reserve_ms // 2
        ):
            self._wake.set()  # ids run far ahead of the clock: reserve more now
        return ids

    def take(self, count: int) -> list[int]:
        """count new ids at once, ascending (UNAVAILABLE without a live lease)."""
        return self._current().take(count) if count else []

    def next(self) -> int:
        """A new id (UNAVAILABLE without a live lease)."""
        return self._current().next()

    async def _try(self, node_id: int) -> tuple[bool, str]:
        sent = time.monotonic()
        reply = await self._acquire(
            keys=[node_key(self._prefix, node_id)],
            args=[self._holder, self._timing.ttl_ms, now_ms(), self._timing.reserve_ms],
        )
        if int(reply[0]) != 1:
            holder = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
            return False, holder
        # After the node's previous holders, and after this process's own earlier node (ids
        # keep ascending across a change of node).
        after = max(int(reply[1]), self._last_ms)
        self._ids = EventIds(node_id, after_ms=after, ceiling_ms=int(reply[2]))
        self._valid_until = sent + self._timing.ttl_seconds * 0.9
        return True, self._holder

    async def acquire(self) -> int:
        """Lease the configured node id, or any free one; raises NodeIdUnavailable."""
        if self._fixed is not None:
            if self._fixed not in NODE_IDS or self._fixed in RESERVED_NODE_IDS:
                raise NodeIdUnavailable(
                    f"LINKPULSE_NODE_ID={self._fixed} is not usable: take one of 0.."
                    f"{len(NODE_IDS) - 1} other than {sorted(RESERVED_NODE_IDS)}"
                )
            taken, holder = await self._try(self._fixed)
            if not taken:
                raise NodeIdUnavailable(
                    f"LINKPULSE_NODE_ID={self._fixed} is leased by {holder}, a process still "
                    f"running (key {node_key(self._prefix, self._fixed)}): give each copy its "
                    "own id, or leave LINKPULSE_NODE_ID unset to lease a free one"
                )
            return self._fixed
        candidates = [n for n in NODE_IDS if n not in RESERVED_NODE_IDS]
        start = random.randrange(len(candidates))  # copies starting together rarely collide
        for node_id in candidates[start:] + candidates[:start]:
            if (await self._try(node_id))[0]:
                return node_id
        raise NodeIdUnavailable(
            f"every event-id node id ({len(candidates)}) under {self._prefix}:node:* is leased "
            "by a live process: stop a copy, or wait for leases of stopped ones to expire "
            f"({self._timing.ttl_seconds:g}s)"
        )

    async def renew(self) -> bool:
        """Extend the lease and the reservation; False when another process took the node."""
        ids = self._ids
        if ids is None:
            return False
        sent = time.monotonic()
        high = max(now_ms(), ids.last_ms) + self._timing.reserve_ms
        renewed = await self._renew(
            keys=[node_key(self._prefix, ids.node_id)],
            args=[self._holder, self._timing.ttl_ms, high],
        )
        if int(renewed) != 1:
            return False
        ids.ceiling_ms = max(ids.ceiling_ms or 0, high)
        self._valid_until = sent + self._timing.ttl_seconds * 0.9
        return True

    def _drop(self) -> EventIds | None:
        ids, self._ids = self._ids, None
        if ids is not None:
            self._last_ms = max(self._last_ms, ids.last_ms)
        return ids

    async def release(self) -> None:
        """Give the node id up (after the last id was minted)."""
        ids = self._drop()
        if ids is not None:
            await self._release(
                keys=[node_key(self._prefix, ids.node_id)], args=[self._holder, ids.last_ms]
            )

    async def keep(self) -> None:
        """Renew until cancelled; a node id taken by another process is replaced by a new one."""
        while True:
            try:
                pause = self._timing.renew_seconds if self._ids is not None else _RETRY_SECONDS
                await asyncio.wait_for(self._wake.wait(), pause)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                if not await self.renew():
                    if self._ids is not None:
                        log.error("event-id node %s was taken over: leasing again", self.node_id)
                        self._drop()
                    node_id = await self.acquire()
                    log.warning("event-id node %s leased", node_id)
            except (RedisError, OSError, NodeIdUnavailable) as exc:
                log.warning("event-id node lease not renewed (%s): retrying", exc)
                await asyncio.sleep(min(_RETRY_SECONDS, self._timing.renew_seconds))


@asynccontextmanager
async def leased_ids(redis: Redis, settings: Settings) -> AsyncIterator[LeasedIds]:
    """Event ids on a node id leased for the life of the block (LINKPULSE_NODE_ID, when set,
    must be free); raises NodeIdUnavailable. With Redis unreachable, the lease is taken once it
    answers (minting is refused until then)."""
    ids = LeasedIds(
        redis,
        settings.ingest_key_prefix,
        LeaseTiming(settings.node_lease_ttl_seconds),
        settings.node_id,
    )
    try:
        node_id = await ids.acquire()
        log.info("event-id node %s leased as %s", node_id, ids.holder)
    except (RedisError, OSError) as exc:
        # Redis down at start is an outage like any other: serve (ingest answers UNAVAILABLE,
        # as it would anyway) and lease once it is back.
        log.warning("event-id node not leased yet (%s): minting waits for Redis", exc)
    keeping = asyncio.create_task(ids.keep())
    try:
        yield ids
    finally:
        keeping.cancel()
        await asyncio.gather(keeping, return_exceptions=True)
        try:
            await ids.release()
        except (RedisError, OSError) as exc:
            log.warning("event-id node lease not released (%s): it expires on its own", exc)
