"""Snapshot cache of the cacheable GET routes in Redis, wrapped around the unary pipeline.

Auth stays in the services, so a snapshot is only served to a caller authorized for the same
route within AUTH_CACHE_SECONDS: the services' auth interceptor names the authorized workspace in
the `x-linkpulse-workspace` trailer of every authorized unary call, and after a 200 the gateway
remembers (credential, route) -> workspace (and the credential's rate limit) for that long. A
credential without such a memo (expired, or new here) is re-checked without the query: the
token resolved and the route's policy checked by the services' own auth code
(gateway.auth_memo); only a confirmation renews the memo, anything else goes to the service,
which refuses (and audits) as usual. A snapshot served spends a request of the credential's rate
limit, like a call would (services.auth.ratelimit): an empty bucket is answered 429. A busy
credential leases a few tokens of its bucket in the read's one call and spends them on the reads
answered from memory meanwhile (gateway.token_lease, gateway.hot_snapshots). Snapshots
are kept per workspace, route and request message (as the pipeline bound it), so two callers of
one workspace share them and no caller ever reaches another workspace's. Redis trouble never
fails a request: it is then answered uncached.

Identical misses are computed once: the requests for one workspace's snapshot arriving while it
is computed wait for that call and read what it stored (in-process single flight; between
gateway copies a short Redis lock, whose waiters poll for the snapshot). Past its TTL a snapshot
is still served for SNAPSHOT_REVALIDATE_SECONDS (`X-Cache: UPDATING`, `Age`, `Warning: 110`)
while one request refreshes it in the background.

Snapshots are kept STALE_SECONDS past their TTL. Past the revalidation window such a stale
snapshot is never a HIT; it is served (`X-Cache: STALE`, `Age`, `Warning: 110`) only when the
service answers the same request 503 or 504, to a caller whose memo names the snapshot's
workspace, or whose failed call the service authorized for it (its answer names the workspace):
so a whole outage of the service's store is bridged, not only the memo's few seconds. A 504 names
no workspace (the call never ended), so past the memo it is answered as it is.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial

from google.protobuf.message import Message
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth_memo import MemoCheck, PostgresMemoCheck
from gateway.disconnects import detach
from gateway.hot_snapshots import HotCopies
from gateway.http_errors import rate_limited
from gateway.metadata import request_id
from gateway.pipeline import Pipeline, call_result, failure_trailer
from gateway.responses import error_response
from gateway.singleflight import SingleFlight
from gateway.token_lease import TokenLeases
from services import partitions
from services.auth import ratelimit
from services.auth.ratelimit import Decision
from services.config import Settings
from services.contract.routes import Route
from services.grpc_server.trailers import NO_STORE_TRAILER, WORKSPACE_TRAILER
from services.partitions import DEFAULT_PARTITIONS
from services.stores.outage import Outage
from services.telemetry import measure

logger = logging.getLogger(__name__)

X_CACHE = "x-cache"
HIT = "HIT"
MISS = "MISS"
STALE = "STALE"
# A snapshot past its TTL served while one request refreshes it (nginx's name for the same).
UPDATING = "UPDATING"
# Service answers replaced by a stale snapshot when one exists (unavailable, deadline exceeded).
_STALE_SERVED_FOR = frozenset({503, 504})
STALE_WARNING = '110 - "Response is Stale"'
# How often a gateway waiting for another one's fill looks for the snapshot.
_LOCK_POLL_SECONDS = 0.02
# Redis connections of one gateway process's cache (a read is one short round trip).
_REDIS_CONNECTIONS = 16

# Request Cache-Control directives that skip the read (the fresh answer is still stored) and
# the one that also skips the write.
_NO_READ = frozenset({"no-cache", "no-store", "max-age=0"})
_NO_STORE = "no-store"


# A memo with less than a quarter of its life left is renewed ahead; at most this many memos are
# remembered as just renewed (then forgotten at once: the worst is one extra check each).
RENEW_AHEAD_DIVISOR = 4
MAX_RENEWING = 10_000
# Credentials whose workspace is remembered (then forgotten at once: the worst is one memo
# check, or one uncached call, each).
MAX_CREDENTIALS = 100_000

# KEYS: the credential's memo for the route, the request's snapshot and the credential's
# rate-limit bucket, all in the partition of the workspace the gateway knows the credential acts
# for (one slot of a Redis Cluster); ARGV: that workspace, the fresh cutoff and the serve cutoff
# (unix seconds; a snapshot stored before the fresh cutoff is past its TTL, one stored before the
# serve cutoff past the revalidation window too), the tokens a fresh read leases and the largest
# share of the bucket's capacity a lease may take. The memo (`<workspace>:<requests/minute>`)
# names the workspace whose snapshot may be served; a memo naming another workspace is none.
# Returns nil (no memo), {workspace} (no snapshot), {workspace, snapshot} (stale: nothing spent),
# {workspace, snapshot, state, ms the memo has left} (state 'fresh' or 'revalidate'; unlimited)
# or {workspace, snapshot, state, tokens taken, tokens left, ms to next, ms to full,
# requests/minute, ms the memo has left} (the bucket leased from: 0 taken is a refusal, 1
# today's spend of one request).
_LOOKUP = (
    ratelimit.SPEND_FUNCTION
    + """
local memo = redis.call('GET', KEYS[1])
if not memo then return nil end
local workspace, limit = string.match(memo, '^(%d+):?(%d*)$')
if workspace ~= ARGV[1] then return nil end
local snapshot = redis.call('GET', KEYS[2])
if not snapshot then return {workspace} end
local stored = tonumber(string.match(snapshot, '^%d+ ([%d%.]+) '))
if not stored then return {workspace} end
if stored < tonumber(ARGV[3]) then return {workspace, snapshot} end
local state = 'fresh'
if stored < tonumber(ARGV[2]) then state = 'revalidate' end
local capacity = tonumber(limit) or 0
if capacity <= 0 then return {workspace, snapshot, state, redis.call('PTTL', KEYS[1])} end
local wanted = 1
if state == 'fresh' then
  local share = math.max(1, math.floor(capacity * (tonumber(ARGV[5]) or 0)))
  wanted = math.min(tonumber(ARGV[4]) or 1, share)
end
local spent = lease(KEYS[3], capacity, wanted)
return {workspace, snapshot, state, spent[1], spent[2], spent[3], spent[4], capacity,
  redis.call('PTTL', KEYS[1])}
"""
)

# KEYS[1]: a fill lock; ARGV[1]: its holder's token. Deletes the lock only if still held by it.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def is_cacheable(route: Route) -> bool:
    """True for the GET (and read-only POST) routes whose protos mark them `cacheable`; the key
    is the bound request, query string or body alike."""
    return (
        route.options.cacheable and route.http_method in ("GET", "POST") and not route.is_websocket
    )


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
    """The Redis keys of one request: its credential's memo, bucket and snapshot, each in the
    partition of a workspace (services.partitions), so that one read stays in one slot."""

    prefix: str
    credential: str
    route: str
    params: str
    partitions: int = DEFAULT_PARTITIONS

    @property
    def flight(self) -> str:
        """The credential and route, naming in-process work shared by their requests."""
        return f"{self.credential}:{self.route}"

    def _tag(self, workspace: str) -> str:
        return partitions.tag(int(workspace), self.partitions)

    def memo(self, workspace: str) -> str:
        """`{prefix}:auth:{pN}:{credential}:{route key}`: the credential's memo for the route."""
        return f"{self.prefix}:auth:{self._tag(workspace)}:{self.credential}:{self.route}"

    def snapshot(self, workspace: str) -> str:
        """`{prefix}:snap:{pN}:{workspace}:{route key}:{sha256 of the bound request}`."""
        return f"{self.prefix}:snap:{self._tag(workspace)}:{workspace}:{self.route}:{self.params}"

    def lock(self, workspace: str) -> str:
        """The fill lock of the workspace's snapshot."""
        return f"{self.prefix}:fill:{self._tag(workspace)}:{workspace}:{self.route}:{self.params}"

    def bucket(self, workspace: str) -> str:
        """The credential's rate-limit bucket (services.auth.ratelimit)."""
        return ratelimit.bucket_key(self.prefix, self.credential, int(workspace), self.partitions)


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


# What a read finds of a snapshot (the lookup script's states, and the one past serving).
FRESH = "fresh"
REVALIDATE = "revalidate"
STALE_STATE = "stale"


@dataclass(frozen=True)
class Lookup:
    """What one read found: the memo's workspace and, if any, its snapshot and how servable."""

    workspace: str
    snapshot: Snapshot | None = None
    # FRESH (served, HIT), REVALIDATE (served while one request refreshes it) or STALE (served
    # only in place of a 503/504); "" without a snapshot.
    state: str = ""
    decision: Decision | None = None
    # Milliseconds the credential's memo had left when read (None: not reported).
    memo_left_ms: int | None = None

    @property
    def servable(self) -> bool:
        """True when the snapshot is answered as it is (fresh, or in the revalidation window)."""
        return self.snapshot is not None and self.state in (FRESH, REVALIDATE)

    @property
    def stale(self) -> Snapshot | None:
        """The snapshot kept for a failing service; None unless the read found one past serving."""
        return self.snapshot if self.state == STALE_STATE else None


class SnapshotCache:
    """Serves the cacheable GET routes from Redis snapshots; `wrap` puts it around a pipeline."""

    def __init__(
        self,
        redis: Redis,
        *,
        ttl_seconds: int,
        auth_ttl_seconds: float,
        stale_seconds: int = 0,
        revalidate_seconds: int = 0,
        prefix: str = "lp",
        partitions: int = DEFAULT_PARTITIONS,
        timeout_seconds: float = 0.1,
        pause_seconds: float = 1.0,
        max_body_bytes: int = 2 << 20,
        lock_ms: int = 5000,
        hot_seconds: float = 0.0,
        lease_seconds: float = 0.5,
        lease_max_tokens: int = 64,
        lease_share: float = 0.01,
        lease_busy_reads: int = 8,
        memo_check: MemoCheck | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._lookup = redis.register_script(_LOOKUP)
        self._unlock = redis.register_script(_UNLOCK)
        self._ttl = ttl_seconds
        self._stale_seconds = max(0, stale_seconds)
        # Within the kept time only: past it the snapshot is gone from Redis anyway.
        self._revalidate_seconds = min(max(0, revalidate_seconds), self._stale_seconds)
        self._auth_ttl_ms = int(auth_ttl_seconds * 1000)
        # A memo read with less than this left is re-checked in the background while it serves;
        # _renewing: memo key -> monotonic time before which it is not re-checked again.
        self._renew_ahead_ms = self._auth_ttl_ms // RENEW_AHEAD_DIVISOR
        self._renewing: dict[str, float] = {}
        self._prefix = prefix
        self._partitions = partitions
        # credential -> the workspace its memo named: the partition its keys are read in.
        self._workspaces: dict[str, str] = {}
        self._timeout = timeout_seconds
        self._max_body_bytes = max_body_bytes
        self._lock_ms = lock_ms
        self._memo_check = memo_check
        self._clock = clock
        self._outage = Outage(
            logger,
            "snapshot cache unavailable, answering uncached",
            pause_seconds,
            on_failure=measure.snapshot_cache_error,
        )
        # Identical misses share one call (keyed by snapshot key), expired memos one check.
        self._fills: SingleFlight[Response | None] = SingleFlight()
        self._checks: SingleFlight[bool] = SingleFlight()
        self._calls: SingleFlight[Response] = SingleFlight()
        self._reads: SingleFlight[Lookup | None] = SingleFlight()
        # Fresh reads of unlimited credentials, and of limited ones holding leased tokens,
        # answered without Redis for a moment.
        self._hot: HotCopies[Lookup] = HotCopies(hot_seconds)
        self._lease_share = lease_share
        self._leases = TokenLeases(
            min(lease_seconds, hot_seconds) if self._hot.enabled else 0.0,
            lease_max_tokens,
            lease_busy_reads,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> SnapshotCache:
        """A cache on settings.redis_url with the configured TTLs, re-checking expired memos
        against settings.database_url."""
        timeout_seconds = settings.snapshot_timeout_seconds
        # A bounded pool: a burst of requests waits for a connection instead of opening one each
        # (on a loaded machine, opening dozens at once can outlast the timeout).
        if settings.redis_cluster:
            redis: Redis = RedisCluster.from_url(  # type: ignore[assignment]  # same commands
                settings.redis_url,
                max_connections=_REDIS_CONNECTIONS,
                socket_connect_timeout=timeout_seconds,
                socket_timeout=timeout_seconds,
            )
        else:
            redis = Redis.from_pool(
                BlockingConnectionPool.from_url(
                    settings.redis_url,
                    max_connections=_REDIS_CONNECTIONS,
                    timeout=timeout_seconds,
                    socket_connect_timeout=timeout_seconds,
                    socket_timeout=timeout_seconds,
                )
            )
        return cls(
            redis,
            ttl_seconds=settings.snapshot_ttl_seconds,
            auth_ttl_seconds=settings.auth_cache_seconds,
            stale_seconds=settings.snapshot_stale_seconds,
            revalidate_seconds=settings.snapshot_revalidate_seconds,
            prefix=settings.ingest_key_prefix,
            partitions=settings.ingest_partitions,
            timeout_seconds=timeout_seconds,
            lock_ms=settings.snapshot_lock_ms,
            hot_seconds=settings.snapshot_hot_ms / 1000,
            lease_seconds=settings.snapshot_lease_ms / 1000,
            lease_max_tokens=settings.snapshot_lease_max_tokens,
            lease_share=settings.snapshot_lease_share,
            lease_busy_reads=settings.snapshot_lease_busy_reads,
            memo_check=PostgresMemoCheck(settings.database_url),
        )

    def wrap(self, pipeline: Pipeline) -> Pipeline:
        """pipeline with cacheable GET routes answered from, and stored into, snapshots."""

        async def cached(route: Route, request: Request, message: Message) -> Response:
            if not is_cacheable(route):
                return await pipeline(route, request, message)
            response = await self._serve(pipeline, route, request, message)
            measure.snapshot_cache(response.headers.get(X_CACHE))
            return response

        return cached

    async def aclose(self) -> None:
        """Stop the refreshes in flight, close the Redis (and PostgreSQL) connections."""
        await self._fills.aclose()
        await self._checks.aclose()
        await self._calls.aclose()
        await self._reads.aclose()
        await self._redis.aclose()
        close = getattr(self._memo_check, "aclose", None)
        if close is not None:
            await close()

    async def _serve(
        self, pipeline: Pipeline, route: Route, request: Request, message: Message
    ) -> Response:
        keys = self._keys(route, request, message)
        directives = _directives(request)
        if keys is None or directives & _NO_READ:
            return await self._call(pipeline, route, request, message, keys, directives)
        found = await self._read(keys)
        if found is None and await self._recheck(route, request, keys):
            found = await self._read(keys)
        if found is None:  # not authorized here recently, or Redis unreachable: the service
            return await self._call_once(pipeline, route, request, message, keys)
        if found.servable:
            if found.state == REVALIDATE:
                self._refresh(pipeline, route, request, message, keys, found.workspace)
            if found.memo_left_ms is not None and found.memo_left_ms < self._renew_ahead_ms:
                self._renew(route, request, keys)
            return self._answer(found, route, request)
        return await self._fill_once(pipeline, route, request, message, keys, found)

    async def _call(
        self,
        pipeline: Pipeline,
        route: Route,
        request: Request,
        message: Message,
        keys: CacheKeys | None,
        directives: set[str],
        stale: Snapshot | None = None,
    ) -> Response:
        """The service's answer (stored when it may be), or a stale snapshot for its 503/504."""
        response = await pipeline(route, request, message)
        if keys is not None and _NO_STORE not in directives:
            await self._store(keys, request, response)
        return await self._finish(response, request, keys, stale, not directives & _NO_READ)

    async def _call_once(
        self,
        pipeline: Pipeline,
        route: Route,
        request: Request,
        message: Message,
        keys: CacheKeys,
    ) -> Response:
        """_call, shared by the identical requests of one credential arriving meanwhile (the
        answer to the same credential and request is the same answer)."""
        detach(request)
        compute = partial(self._call, pipeline, route, request, message, keys, set())
        answered, leader = await self._calls.run(f"{keys.flight}:{keys.params}", compute)
        return answered if leader else _copy(answered, request)

    async def _finish(
        self,
        response: Response,
        request: Request,
        keys: CacheKeys | None,
        stale: Snapshot | None,
        may_read: bool,
    ) -> Response:
        if response.status_code in _STALE_SERVED_FOR and keys is not None:
            if stale is None and may_read:
                stale = await self._snapshot_of_failure(keys, request)
            if stale is not None:
                return self._stale(stale, request, response)
        response.headers[X_CACHE] = MISS
        return response

    async def _fill_once(
        self,
        pipeline: Pipeline,
        route: Route,
        request: Request,
        message: Message,
        keys: CacheKeys,
        found: Lookup,
    ) -> Response:
        """A miss of a workspace's snapshot: one request computes it, the identical ones arriving
        meanwhile (in this process; in other copies through a Redis lock) read what it stored."""
        workspace = found.workspace
        compute = partial(self._fill, pipeline, route, request, message, keys, workspace, True)
        filled, leader = await self._fills.run(keys.snapshot(workspace), compute)
        if leader and filled is not None:
            return await self._finish(filled, request, keys, found.stale, True)
        again = await self._read(keys)
        if again is not None and again.servable:
            return self._answer(again, route, request)
        # Nothing stored: an answer kept from caches (200) or the service's trouble (503/504) is
        # the same for every caller of the workspace; anything else may be the leader's own.
        if filled is not None and filled.status_code in (200, *_STALE_SERVED_FOR):
            return await self._finish(_copy(filled, request), request, keys, found.stale, True)
        return await self._call(pipeline, route, request, message, keys, set(), found.stale)

    def _refresh(
        self,
        pipeline: Pipeline,
        route: Route,
        request: Request,
        message: Message,
        keys: CacheKeys,
        workspace: str,
    ) -> None:
        """Recompute a snapshot past its TTL in the background, unless a refresh already runs."""
        flight = keys.snapshot(workspace)
        if not self._fills.running(flight):
            compute = partial(self._fill, pipeline, route, request, message, keys, workspace, False)
            self._fills.start(flight, compute)

    async def _fill(
        self,
        pipeline: Pipeline,
        route: Route,
        request: Request,
        message: Message,
        keys: CacheKeys,
        workspace: str,
        wait: bool,
    ) -> Response | None:
        """Compute and store the snapshot under the workspace's fill lock; None when another
        gateway held the lock (and, if wait, stored the snapshot meanwhile)."""
        lock = keys.lock(workspace)
        token = uuid.uuid4().hex
        if not await self._lock(lock, token):
            if not wait or await self._wait_for(keys.snapshot(workspace), lock):
                return None
        detach(request)  # the others waiting for this answer keep waiting if its client leaves
        try:
            response = await pipeline(route, request, message)
            await self._store(keys, request, response)
        finally:
            await self._release(lock, token)
        return response

    async def _lock(self, lock: str, token: str) -> bool:
        """True when this gateway takes the fill lock (or Redis cannot say: compute anyway)."""
        if self._lock_ms <= 0 or self._outage.paused():
            return True
        try:
            async with asyncio.timeout(self._timeout):
                return bool(await self._redis.set(lock, token, nx=True, px=self._lock_ms))
        except Exception as exc:  # the cache must never fail a request
            self._outage.failed(exc)
            return True

    async def _release(self, lock: str, token: str) -> None:
        if self._lock_ms <= 0 or self._outage.paused():
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._unlock(keys=[lock], args=[token])
        except Exception as exc:  # the lock expires by itself
            self._outage.failed(exc)

    async def _wait_for(self, snapshot_key: str, lock: str) -> bool:
        """Wait while another gateway holds the fill lock; True once a fresh snapshot is there."""
        deadline = time.monotonic() + self._lock_ms / 1000
        while time.monotonic() < deadline:
            await asyncio.sleep(_LOCK_POLL_SECONDS)
            try:
                async with asyncio.timeout(self._timeout):
                    async with self._redis.pipeline(transaction=False) as pipe:
                        pipe.get(snapshot_key)
                        pipe.exists(lock)
                        raw, held = await pipe.execute()
            except Exception as exc:  # the cache must never fail a request
                self._outage.failed(exc)
                return False
            snapshot = Snapshot.load(raw) if raw else None
            if snapshot is not None and snapshot.stored_at >= self._clock() - self._ttl:
                return True
            if not held:
                return False
        return False

    async def _recheck(self, route: Route, request: Request, keys: CacheKeys) -> bool:
        """Re-check the credential's authorization for the route (no query); True once its memo
        is written again. One check at a time per credential and route."""
        confirm = self._confirmation(route, request, keys)
        if confirm is None:
            return False
        confirmed, _ = await self._checks.run(keys.flight, confirm)
        return confirmed

    def _renew(self, route: Route, request: Request, keys: CacheKeys) -> None:
        """Re-check a memo about to expire in the background while it still serves, so that a
        busy credential's reads never all wait on the check at once (a refused check leaves the
        memo to expire, as before)."""
        now = time.monotonic()
        if self._renewing.get(keys.flight, 0.0) > now or self._checks.running(keys.flight):
            return  # renewed a moment ago (a hot copy still reports the old memo) or running
        confirm = self._confirmation(route, request, keys)
        if confirm is None:
            return
        if len(self._renewing) >= MAX_RENEWING:
            self._renewing.clear()
        self._renewing[keys.flight] = now + self._renew_ahead_ms / 1000
        self._checks.start(keys.flight, confirm)

    def _confirmation(
        self, route: Route, request: Request, keys: CacheKeys
    ) -> Callable[[], Awaitable[bool]] | None:
        """The check that writes the credential's memo again when confirmed; None when the
        gateway does not re-check memos (or Redis is paused)."""
        if self._memo_check is None or self._outage.paused() or self._auth_ttl_ms <= 0:
            return None
        check = self._memo_check
        authorization = request.headers.get("authorization", "")
        workspace = request.headers.get("x-workspace-id", "")

        async def confirm() -> bool:
            memo = await check.confirm(route, authorization, workspace)
            if memo is None:
                return False
            acting_for = memo.partition(":")[0]
            try:
                async with asyncio.timeout(self._timeout):
                    await self._redis.set(keys.memo(acting_for), memo, px=self._auth_ttl_ms)
            except Exception as exc:  # the cache must never fail a request
                self._outage.failed(exc)
                return False
            self._learn(keys.credential, acting_for)
            return True

        return confirm

    def _keys(self, route: Route, request: Request, message: Message) -> CacheKeys | None:
        """The keys of the request bound as message; None without a token."""
        credential = credential_digest(request)
        if credential is None:
            return None
        # The typed message, not the query string: order, spelling (campaignId / campaign_id)
        # and number format (07) do not matter.
        params = hashlib.sha256(message.SerializeToString(deterministic=True)).hexdigest()
        return CacheKeys(self._prefix, credential, route.key, params, self._partitions)

    def _learn(self, credential: str, workspace: str) -> None:
        """Remember the workspace a credential acts for (the partition of its keys)."""
        if self._workspaces.get(credential) == workspace:
            return
        if len(self._workspaces) >= MAX_CREDENTIALS:
            self._workspaces.clear()
        self._workspaces[credential] = workspace

    async def _read(self, keys: CacheKeys) -> Lookup | None:
        """What the credential's memo allows of the request's snapshot (None: no memo, or Redis
        trouble); a servable one has spent a request of the rate limit (in Redis, or a token
        leased from there) — at most one round trip."""
        if not self._hot.enabled:
            return await self._read_redis(keys)
        self._leases.note(keys.credential)
        hot_key = _hot_key(keys)
        hot = self._hot.get(hot_key)
        if hot is not None:
            leased = self._spent(hot, keys)
            if leased is not None:
                return leased
        if not self._hot.known(hot_key):
            return await self._read_redis(keys)
        # The copy has just expired (or its lease is spent): one read renews it for every
        # request arriving meanwhile, instead of all of them at once.
        found, leader = await self._reads.run(hot_key, partial(self._read_redis, keys))
        if leader or found is None or found.decision is None:
            return found
        if found.state == FRESH:
            leased = self._spent(found, keys)
            if leased is not None:
                return leased
        return await self._read_redis(keys)  # no token left here: each request spends its own

    def _spent(self, found: Lookup, keys: CacheKeys) -> Lookup | None:
        """found as this request's answer: as it is when unlimited, with a leased token spent
        when limited; None when the credential holds no token here."""
        if found.decision is None:
            return found
        decision = self._leases.spend(keys.credential)
        return None if decision is None else replace(found, decision=decision)

    async def _read_redis(self, keys: CacheKeys) -> Lookup | None:
        """_read from Redis (one round trip)."""
        workspace = self._workspaces.get(keys.credential)
        if workspace is None or self._outage.paused():
            return None  # no memo known here: the memo check or the service tells the workspace
        now = self._clock()
        fresh_cutoff = f"{now - self._ttl:.3f}"
        serve_cutoff = f"{now - self._ttl - self._revalidate_seconds:.3f}"
        wanted = self._leases.wanted(keys.credential)
        args: list[str | int | float] = [
            workspace,
            fresh_cutoff,
            serve_cutoff,
            wanted,
            self._lease_share,
        ]
        try:
            async with asyncio.timeout(self._timeout):
                reply = await self._lookup(
                    keys=[keys.memo(workspace), keys.snapshot(workspace), keys.bucket(workspace)],
                    args=args,
                )
        except Exception as exc:  # the cache must never fail a request
            self._outage.failed(exc)
            return None
        self._outage.answered()
        if not reply:
            return None
        workspace = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        snapshot = Snapshot.load(reply[1]) if len(reply) > 1 else None
        if snapshot is None:
            return Lookup(workspace)
        if len(reply) == 2:
            return Lookup(workspace, snapshot, STALE_STATE)
        state = reply[2].decode() if isinstance(reply[2], bytes) else str(reply[2])
        if len(reply) > 4:
            taken = int(reply[3])
            decision = Decision.of(reply[3:7], int(reply[7]))
            found = Lookup(
                workspace,
                snapshot,
                state,
                self._leases.keep(keys.credential, taken, decision),
                int(reply[8]),
            )
            if state == FRESH and taken > 1:  # tokens held here: a copy may spend them
                valid = min(int(reply[8]) / 1000, snapshot.stored_at + self._ttl - now)
                self._hot.put(_hot_key(keys), found, valid)
            return found
        found = Lookup(workspace, snapshot, state, memo_left_ms=int(reply[3]))
        if state == FRESH:  # unlimited: nothing to spend, so a copy may answer for a moment
            valid = min(int(reply[3]) / 1000, snapshot.stored_at + self._ttl - now)
            self._hot.put(_hot_key(keys), found, valid)
        return found

    def _answer(self, found: Lookup, route: Route, request: Request) -> Response:
        """A servable snapshot (HIT, or UPDATING while refreshed), or 429 for an empty bucket."""
        assert found.snapshot is not None
        decision = found.decision
        headers = decision.headers() if decision is not None else {}
        if decision is not None and not decision.allowed:
            measure.rate_limited()
            return error_response(rate_limited(decision), route.options.envelope, headers)
        if found.state == REVALIDATE:
            headers["warning"] = STALE_WARNING
            return self._served(found.snapshot, request, headers, UPDATING)
        return self._served(found.snapshot, request, headers, HIT)

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

    async def _store(self, keys: CacheKeys, request: Request, response: Response) -> None:
        """Keep a 200 the service authorized (its memo) and allowed to be kept."""
        if response.status_code != 200:
            return
        memo = _memo(request)
        body = getattr(response, "body", None)
        if (
            memo is None
            or self._outage.paused()
            or self._ttl <= 0
            or self._auth_ttl_ms <= 0
            or not isinstance(body, bytes)
            or len(body) > self._max_body_bytes
        ):
            return
        self._hot.drop(_hot_key(keys))
        content_type = response.headers.get("content-type", "application/octet-stream")
        snapshot = Snapshot(response.status_code, content_type, body, self._clock())
        try:
            async with asyncio.timeout(self._timeout):
                async with self._redis.pipeline(transaction=False) as pipe:
                    workspace = memo.partition(":")[0]
                    kept = self._ttl + self._stale_seconds
                    pipe.set(keys.snapshot(workspace), snapshot.dump(), ex=kept)
                    pipe.set(keys.memo(workspace), memo, px=self._auth_ttl_ms)
                    await pipe.execute()
        except Exception as exc:  # the cache must never fail a request
            self._outage.failed(exc)
            return
        self._learn(keys.credential, workspace)

    def _served(
        self, snapshot: Snapshot, request: Request, extra: dict[str, str], how: str
    ) -> Response:
        age = max(0, int(self._clock() - snapshot.stored_at))
        headers = {
            **extra,
            "x-request-id": request_id(request),
            "content-type": snapshot.content_type,
            X_CACHE: how,
            "age": str(age),
        }
        return Response(snapshot.body, status_code=snapshot.status, headers=headers)

    def _stale(self, snapshot: Snapshot, request: Request, failed: Response) -> Response:
        """snapshot in place of the service's 503/504 answer failed, marked stale."""
        extra = {
            k: v
            for k, v in failed.headers.items()
            if k.startswith("x-ratelimit") or k == "retry-after"
        }
        extra["warning"] = STALE_WARNING
        return self._served(snapshot, request, extra, STALE)


def _hot_key(keys: CacheKeys) -> str:
    return f"{keys.flight}:{keys.params}"


def _copy(response: Response, request: Request) -> Response:
    """Another caller's copy of response (same body and headers, its own request id)."""
    headers = {k: v for k, v in response.headers.items() if k != "content-length"}
    headers["x-request-id"] = request_id(request)
    body = getattr(response, "body", b"")
    return Response(body, status_code=response.status_code, headers=headers)
