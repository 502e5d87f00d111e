"""Snapshot cache of the cacheable GET routes in Redis, wrapped around the unary pipeline.

Auth stays in the services, so a snapshot is only served to a caller the service authorized
for the same route within AUTH_CACHE_SECONDS: the services' auth interceptor names the
authorized workspace in the `x-linkpulse-workspace` trailer of every authorized unary call, and
after a 200 the gateway remembers (credential, route) -> workspace (and the credential's rate
limit) for that long. A snapshot served spends a request of the credential's rate limit, like
a call would (services.auth.ratelimit): an empty bucket is answered 429. Snapshots are
kept per workspace, route and request message (as the pipeline bound it), so two callers of
one workspace share them and no caller ever reaches another workspace's. Redis trouble never
fails a request: it is then answered uncached.

Snapshots are kept STALE_SECONDS past their TTL. Such a stale snapshot is never a HIT; it is
served (`X-Cache: STALE`, `Age`, `Warning: 110`) only when the service answers the same request
503 or 504, to a caller whose memo names the snapshot's workspace, or whose failed call the
service authorized for it (its answer names the workspace): so a whole outage of the service's
store is bridged, not only the memo's few seconds. A 504 names no workspace (the call never
ended), so past the memo it is answered as it is.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import Message
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response

from gateway.http_errors import rate_limited
from gateway.metadata import request_id
from gateway.pipeline import Pipeline, call_result, failure_trailer
from gateway.responses import error_response
from services.auth import ratelimit
from services.auth.ratelimit import Decision
from services.config import Settings
from services.contract.routes import Route
from services.grpc_server.trailers import NO_STORE_TRAILER, WORKSPACE_TRAILER
from services.stores.outage import Outage
from services.stores.redisclient import create_redis

logger = logging.getLogger(__name__)

X_CACHE = "x-cache"
HIT = "HIT"
MISS = "MISS"
STALE = "STALE"
# Service answers replaced by a stale snapshot when one exists (unavailable, deadline exceeded).
_STALE_SERVED_FOR = frozenset({503, 504})
STALE_WARNING = '110 - "Response is Stale"'

# Request Cache-Control directives that skip the read (the fresh answer is still stored) and
# the one that also skips the write.
_NO_READ = frozenset({"no-cache", "no-store", "max-age=0"})
_NO_STORE = "no-store"


# KEYS[1]: the credential's memo for the route; ARGV: the snapshot key before and after the
# workspace, the credential's rate-limit bucket. The memo (`<workspace>:<requests/minute>`)
# names the workspace whose snapshot may be served; a snapshot found spends a request of the
# bucket. Returns nil (no memo or no snapshot), {snapshot, 'stale'} (stored before ARGV[4], the
# fresh cutoff: nothing spent), {snapshot} (unlimited) or {snapshot, allowed, tokens left, ms to
# next, ms to full, requests/minute}. The snapshot and bucket keys come
# from the memo and are not declared: the cache needs a single Redis server, not a cluster.
_LOOKUP = (
    ratelimit.SPEND_FUNCTION
    + """
local memo = redis.call('GET', KEYS[1])
if not memo then return nil end
local workspace, limit = string.match(memo, '^(%d+):?(%d*)$')
if not workspace then return nil end
local snapshot = redis.call('GET', ARGV[1] .. workspace .. ARGV[2])
if not snapshot then return nil end
local stored = tonumber(string.match(snapshot, '^%d+ ([%d%.]+) '))
if stored and stored < tonumber(ARGV[4]) then return {snapshot, 'stale'} end
local capacity = tonumber(limit) or 0
if capacity <= 0 then return {snapshot} end
local spent = spend(ARGV[3], capacity)
return {snapshot, spent[1], spent[2], spent[3], spent[4], capacity}
"""
)


def is_cacheable(route: Route) -> bool:
    """True for the GET routes whose protos mark them `cacheable`."""
    return route.options.cacheable and route.http_method == "GET" and not route.is_websocket


@dataclass(frozen=True)
class Snapshot:
    """A stored answer: status, content type, body and when it was stored (unix seconds)."""

    status: int
    content_type: str
    body: bytes
    stored_at: float

    def dump(self) -> bytes:
        """`<status> <stored_at> <content type>\\n<body>`."""
        return f"{self.status} {self.stored_at:.3f} {self.content_type}\n".encode() + self.body

    @classmethod
    def load(cls, raw: bytes) -> Snapshot | None:
        """The snapshot of dump's bytes; None if they are not one."""
        head, newline, body = raw.partition(b"\n")
        try:
            status, stored_at, content_type = head.decode().split(" ", 2)
            if not newline:
                return None
            return cls(int(status), content_type, body, float(stored_at))
        except ValueError:
            return None


@dataclass(frozen=True)
class CacheKeys:
    """The Redis keys of one request: its credential's memo and its snapshot's suffix."""

    prefix: str
    credential: str
    memo: str
    route: str
    params: str

    def snapshot(self, workspace: str) -> str:
        """`{prefix}:snap:{workspace}:{route key}:{sha256 of the bound request}`."""
        return f"{self.prefix}:snap:{workspace}:{self.route}:{self.params}"


def credential_digest(request: Request) -> str | None:
    """sha256 of `Authorization|X-Workspace-Id` (what services authenticate); None if no token."""
    authorization = request.headers.get("authorization")
    if not authorization:
        return None
    return ratelimit.credential_digest(authorization, request.headers.get("x-workspace-id", ""))


def _directives(request: Request) -> set[str]:
    header = request.headers.get("cache-control", "")
    return {part.strip().lower().replace(" ", "") for part in header.split(",") if part.strip()}


def _trailer(request: Request, name: str) -> str | None:
    result = call_result(request)
    value = None if result is None else result.metadata_value(name)
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value if isinstance(value, str) and value.isdigit() else None


def _memo(request: Request) -> str | None:
    """`<workspace>:<rate limit>` the service authorized the call for; None if the answer must
    not be kept."""
    result = call_result(request)
    if result is None or result.metadata_value(NO_STORE_TRAILER) is not None:
        return None
    workspace = _trailer(request, WORKSPACE_TRAILER)
    if workspace is None:
        return None
    return f"{workspace}:{_trailer(request, ratelimit.LIMIT) or 0}"


class SnapshotCache:
    """Serves the cacheable GET routes from Redis snapshots; `wrap` puts it around a pipeline."""

    def __init__(
        self,
        redis: Redis,
        *,
        ttl_seconds: int,
        auth_ttl_seconds: float,
        stale_seconds: int = 0,
        prefix: str = "lp",
        timeout_seconds: float = 0.1,
        pause_seconds: float = 1.0,
        max_body_bytes: int = 2 << 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._lookup = redis.register_script(_LOOKUP)
        self._ttl = ttl_seconds
        self._stale_seconds = max(0, stale_seconds)
        self._auth_ttl_ms = int(auth_ttl_seconds * 1000)
        self._prefix = prefix
        self._timeout = timeout_seconds
        self._max_body_bytes = max_body_bytes
        self._clock = clock
        self._outage = Outage(
            logger, "snapshot cache unavailable, answering uncached", pause_seconds
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout_seconds: float = 0.1) -> SnapshotCache:
        """A cache on settings.redis_url with the configured snapshot and auth TTLs."""
        return cls(
            create_redis(settings.redis_url, timeout_seconds, timeout_seconds),
            ttl_seconds=settings.snapshot_ttl_seconds,
            auth_ttl_seconds=settings.auth_cache_seconds,
            stale_seconds=settings.snapshot_stale_seconds,
            prefix=settings.ingest_key_prefix,
            timeout_seconds=timeout_seconds,
        )

    def wrap(self, pipeline: Pipeline) -> Pipeline:
        """pipeline with cacheable GET routes answered from, and stored into, snapshots."""

        async def cached(route: Route, request: Request, message: Message) -> Response:
            if not is_cacheable(route):
                return await pipeline(route, request, message)
            return await self._serve(pipeline, route, request, message)

        return cached

    async def aclose(self) -> None:
        """Close the Redis connections."""
        await self._redis.aclose()

    async def _serve(
        self, pipeline: Pipeline, route: Route, request: Request, message: Message
    ) -> Response:
        keys = self._keys(route, request, message)
        directives = _directives(request)
        stale: Snapshot | None = None
        if keys is not None and not directives & _NO_READ:
            found = await self._read(keys)
            if found is not None:
                snapshot, decision, fresh = found
                if not fresh:
                    stale = snapshot  # served only if the service cannot answer
                else:
                    headers = decision.headers() if decision is not None else {}
                    if decision is not None and not decision.allowed:
                        return error_response(
                            rate_limited(decision), route.options.envelope, headers
                        )
                    return self._hit(snapshot, request, headers)
        response = await pipeline(route, request, message)
        if response.status_code in _STALE_SERVED_FOR and keys is not None:
            if stale is None and not directives & _NO_READ:
                stale = await self._snapshot_of_failure(keys, request)
            if stale is not None:
                return self._stale(stale, request, response)
        if keys is not None and _NO_STORE not in directives and response.status_code == 200:
            memo = _memo(request)
            if memo is not None:
                await self._write(keys, memo, response)
        response.headers[X_CACHE] = MISS
        return response

    def _keys(self, route: Route, request: Request, message: Message) -> CacheKeys | None:
        """The keys of the request bound as message; None without a token."""
        credential = credential_digest(request)
        if credential is None:
            return None
        # The typed message, not the query string: order, spelling (campaignId / campaign_id)
        # and number format (07) do not matter.
        params = hashlib.sha256(message.SerializeToString(deterministic=True)).hexdigest()
        memo = f"{self._prefix}:auth:{credential}:{route.key}"
        return CacheKeys(self._prefix, credential, memo, route.key, params)

    async def _read(self, keys: CacheKeys) -> tuple[Snapshot, Decision | None, bool] | None:
        """The request's snapshot if the memo allows it and whether it is fresh; a fresh one has
        spent a request of the credential's rate limit (None: unlimited) — one round trip."""
        if self._outage.paused():
            return None
        before, after = keys.snapshot("\n").split("\n")
        bucket = ratelimit.bucket_key(self._prefix, keys.credential)
        try:
            async with asyncio.timeout(self._timeout):
                cutoff = f"{self._clock() - self._ttl:.3f}"
                reply = await self._lookup(keys=[keys.memo], args=[before, after, bucket, cutoff])
        except Exception as exc:  # the cache must never fail a request
            self._outage.failed(exc)
            return None
        if not reply:
            return None
        snapshot = Snapshot.load(reply[0])
        if snapshot is None:
            return None
        if len(reply) == 2:  # stored before the fresh cutoff
            return snapshot, None, False
        decision = Decision.of(reply[1:5], int(reply[5])) if len(reply) > 1 else None
        return snapshot, decision, True

    async def _snapshot_of_failure(self, keys: CacheKeys, request: Request) -> Snapshot | None:
        """The request's snapshot in the workspace its failed call was authorized for (the
        service names it even when it cannot answer, e.g. with ClickHouse down); None if none."""
        workspace = failure_trailer(request, WORKSPACE_TRAILER)
        if workspace is None or not workspace.isdigit() or self._outage.paused():
            return None
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._redis.get(keys.snapshot(workspace))
        except Exception as exc:  # the cache must never fail a request
            self._outage.failed(exc)
            return None
        return Snapshot.load(raw) if raw else None

    async def _write(self, keys: CacheKeys, memo: str, response: Response) -> None:
        body = getattr(response, "body", None)
        if (
            self._outage.paused()
            or self._ttl <= 0
            or self._auth_ttl_ms <= 0
            or not isinstance(body, bytes)
            or len(body) > self._max_body_bytes
        ):
            return
        content_type = response.headers.get("content-type", "application/octet-stream")
        snapshot = Snapshot(response.status_code, content_type, body, self._clock())
        try:
            async with asyncio.timeout(self._timeout):
                async with self._redis.pipeline(transaction=False) as pipe:
                    workspace = memo.partition(":")[0]
                    kept = self._ttl + self._stale_seconds
                    pipe.set(keys.snapshot(workspace), snapshot.dump(), ex=kept)
                    pipe.set(keys.memo, memo, px=self._auth_ttl_ms)
                    await pipe.execute()
        except Exception as exc:  # the cache must never fail a request
            self._outage.failed(exc)

    def _hit(self, snapshot: Snapshot, request: Request, extra: dict[str, str]) -> Response:
        age = max(0, int(self._clock() - snapshot.stored_at))
        headers = {
            **extra,
            "x-request-id": request_id(request),
            "content-type": snapshot.content_type,
            X_CACHE: HIT,
            "age": str(age),
        }
        return Response(snapshot.body, status_code=snapshot.status, headers=headers)

    def _stale(self, snapshot: Snapshot, request: Request, failed: Response) -> Response:
        """snapshot in place of the service's 503/504 answer failed, marked stale."""
        age = max(0, int(self._clock() - snapshot.stored_at))
        extra = {
            k: v
            for k, v in failed.headers.items()
            if k.startswith("x-ratelimit") or k == "retry-after"
        }
        headers = {
            **extra,
            "x-request-id": request_id(request),
            "content-type": snapshot.content_type,
            X_CACHE: STALE,
            "age": str(age),
            "warning": STALE_WARNING,
        }
        return Response(snapshot.body, status_code=snapshot.status, headers=headers)
