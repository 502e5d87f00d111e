"""Rate limits: a token bucket per credential in Redis, refilled at its plan's requests/minute.

One bucket per credential (the SHA-256 of its `Authorization` and `X-Workspace-Id`, the same
digest the gateway's snapshot cache keys on; hash-tagged with its workspace's partition),
holding at most a minute of requests. The services'
auth interceptor spends a token for every RPC, the gateway one for every snapshot it serves
instead of calling a service, so cached answers count too. Redis down or slow: the request is
served unlimited (the limiter pauses for a moment and logs once a minute), never refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass

import grpc
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from services import errors
from services.auth.principal import Principal
from services.partitions import DEFAULT_PARTITIONS, tag
from services.stores.outage import Outage
from services.telemetry import measure

log = logging.getLogger("linkpulse.ratelimit")

# HTTP headers and gRPC trailing metadata (lowercase) carrying a decision.
LIMIT = "x-ratelimit-limit"
REMAINING = "x-ratelimit-remaining"
RESET = "x-ratelimit-reset"
RETRY_AFTER = "retry-after"
HEADERS = (LIMIT, REMAINING, RESET, RETRY_AFTER)

# The bucket as Lua functions, for this module's script and the snapshot cache's (which
# spends in the same round trip as it reads a snapshot). spend(bucket key, requests per
# minute = capacity, requests to spend (default 1)) returns allowed (0/1), whole tokens left,
# ms until the next token, ms until full; a refusal spends nothing. lease(key, capacity, wanted)
# is its all-or-some form: it takes up to wanted whole tokens (as many as there are, at least
# one) and returns how many it took (0: refused, nothing taken) in place of allowed; a lease of
# 1 is spend's call.
SPEND_FUNCTION = """
local function refilled(key, capacity)
  local per_ms = capacity / 60000
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  local state = redis.call('HMGET', key, 't', 'n')
  local last = tonumber(state[1]) or now
  local tokens = tonumber(state[2]) or capacity
  return math.min(capacity, tokens + math.max(0, now - last) * per_ms), now, per_ms
end
local function settle(key, capacity, tokens, now, per_ms, taken)
  redis.call('HSET', key, 't', now, 'n', tostring(tokens))
  redis.call('PEXPIRE', key, 120000)
  local next_token = 0
  if tokens < 1 then next_token = math.ceil((1 - tokens) / per_ms) end
  return {taken, math.floor(tokens), next_token, math.ceil((capacity - tokens) / per_ms)}
end
local function spend(key, capacity, cost)
  cost = cost or 1
  local tokens, now, per_ms = refilled(key, capacity)
  local allowed = 0
  if tokens >= cost then
    tokens = tokens - cost
    allowed = 1
  end
  return settle(key, capacity, tokens, now, per_ms, allowed)
end
local function lease(key, capacity, wanted)
  local tokens, now, per_ms = refilled(key, capacity)
  local taken = 0
  if tokens >= 1 then
    taken = math.min(math.max(1, wanted), math.floor(tokens))
    tokens = tokens - taken
  end
  return settle(key, capacity, tokens, now, per_ms, taken)
end
"""
# KEYS[1]: the bucket; ARGV[1]: requests per minute; ARGV[2]: requests to spend.
_SPEND = SPEND_FUNCTION + "return spend(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))\n"
# KEYS[1]: the bucket; ARGV[1]: requests per minute; ARGV[2]: requests wanted.
_LEASE = SPEND_FUNCTION + "return lease(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))\n"


def credential_digest(authorization: str, workspace: str = "") -> str:
    """The bucket name of a credential: sha256 of `Authorization|X-Workspace-Id`."""
    return hashlib.sha256(f"{authorization}|{workspace}".encode()).hexdigest()


def bucket_key(
    prefix: str, credential: str, workspace_id: int = 0, partitions: int = DEFAULT_PARTITIONS
) -> str:
    """The Redis key of a credential's bucket, in the partition of the workspace the credential
    acts for (so the gateway's snapshot read spends from it in the snapshot's slot)."""
    return f"{prefix}:ratelimit:{tag(workspace_id, partitions)}:{credential}"


@dataclass(frozen=True)
class Decision:
    """The outcome of spending one request."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the bucket is full again
    retry_after_seconds: int  # until the next request is allowed (0 when allowed)

    @classmethod
    def of(cls, reply: list[int], per_minute: int) -> Decision:
        """The decision of spend()'s reply [allowed, tokens left, ms to next, ms to full]."""
        allowed, remaining, next_ms, full_ms = (int(v) for v in reply[:4])
        return cls(
            allowed=bool(allowed),
            limit=per_minute,
            remaining=remaining,
            reset_seconds=-(-full_ms // 1000),
            retry_after_seconds=-(-next_ms // 1000),
        )

    def headers(self) -> dict[str, str]:
        """X-RateLimit-* (and Retry-After when refused), as lowercase names."""
        headers = {
            LIMIT: str(self.limit),
            REMAINING: str(self.remaining),
            RESET: str(self.reset_seconds),
        }
        if not self.allowed:
            headers[RETRY_AFTER] = str(max(1, self.retry_after_seconds))
        return headers


class RateLimiter:
    """Spends requests from per-credential buckets; answers None whenever Redis cannot."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "lp",
        partitions: int = DEFAULT_PARTITIONS,
        timeout_seconds: float = 0.1,
        pause_seconds: float = 5.0,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._partitions = partitions
        self._timeout = timeout_seconds
        self._outage = Outage(log, "rate limiter unavailable, serving unlimited", pause_seconds)
        self._script = redis.register_script(_SPEND)
        self._lease = redis.register_script(_LEASE)

    async def spend(
        self, credential: str, per_minute: int, cost: int = 1, *, workspace_id: int = 0
    ) -> Decision | None:
        """Take cost requests (all or none) from the bucket of the credential (acting for
        workspace_id); None when unlimited or Redis fails."""
        reply = await self._take(self._script, credential, workspace_id, per_minute, cost)
        return None if reply is None else Decision.of(reply, per_minute)

    async def lease(
        self, credential: str, per_minute: int, wanted: int, *, workspace_id: int = 0
    ) -> tuple[int, Decision] | None:
        """Take up to wanted requests (as many as are left, at least one) from the credential's
        bucket: how many were taken (0: refused) and the decision; None when unlimited or Redis
        fails."""
        reply = await self._take(self._lease, credential, workspace_id, per_minute, wanted)
        return None if reply is None else (int(reply[0]), Decision.of(reply, per_minute))

    async def charge(
        self, caller: Principal, metadata: dict[str, str], cost: int = 1
    ) -> tuple[tuple[str, str], ...]:
        """Spend cost requests of the calling credential's limit (all or none): its
        X-RateLimit-* headers as trailers, or RESOURCE_EXHAUSTED (429) carrying them."""
        credential = credential_digest(
            metadata.get("authorization", ""), metadata.get("x-workspace-id", "")
        )
        decision = await self.spend(
            credential, caller.requests_per_minute, cost, workspace_id=caller.workspace_id
        )
        if decision is None:
            return ()
        trailers = tuple(decision.headers().items())
        if not decision.allowed:
            measure.rate_limited()
            raise errors.ApiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "rate_limited",
                f"rate limit of {decision.limit} requests per minute ({caller.plan} plan)"
                f" exceeded; retry after {decision.retry_after_seconds} s",
                trailers=trailers,
            )
        return trailers

    async def _take(
        self, script: AsyncScript, credential: str, workspace_id: int, per_minute: int, count: int
    ) -> list[int] | None:
        """script's reply for count requests of the credential's bucket; None when unlimited
        or Redis fails."""
        if per_minute <= 0 or self._outage.paused():
            return None
        try:
            async with asyncio.timeout(self._timeout):
                reply: list[int] = await script(
                    keys=[bucket_key(self._prefix, credential, workspace_id, self._partitions)],
                    args=[per_minute, count],
                )
        except Exception as exc:  # noqa: BLE001 - a limiter failure never refuses a request
            self._outage.failed(exc)
            return None
        return reply
