"""The snapshot cache under concurrent load: identical misses computed once (in one gateway and
across two copies), stale-while-revalidate, expired memos re-checked without the query, hot
copies, token leases of busy rate-limited credentials. The gateway under uvicorn, real Redis (db
15, through a client counting its commands), a counting QueryService behind the services' real
auth and error interceptors."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.auth_memo import MemoCheck
from gateway.cache import SnapshotCache
from services import errors, protos
from services.auth import principal as principals
from services.config import Settings
from services.contract.compiled import contract
from services.grpc_server.interceptors import AuthInterceptor, ErrorInterceptor
from tests.asgi_server import serving as asgi_serving

pytestmark = pytest.mark.asyncio(loop_scope="session")

REDIS_URL = "redis://127.0.0.1:6379/15"
OVERVIEW = "/api/analytics/workspace/overview"
# How long the service takes to compute an answer: long enough for every concurrent request
# to arrive while the first one is computed.
COMPUTE_SECONDS = 0.4


def _principal(workspace_id: int, per_minute: int = 0) -> principals.Principal:
    return principals.Principal(
        actor=f"api_key:{workspace_id}",
        workspace_id=workspace_id,
        organization_id=1,
        workspace_ids=(workspace_id,),
        scopes=frozenset({"analytics:read"}),
        plan="business",
        features=frozenset(),
        max_days=1095,
        timezone="UTC",
        currency="USD",
        requests_per_minute=per_minute,
    )


class CountingResolver:
    """Tokens to principals; counts the look-ups (the services' and the gateway's)."""

    def __init__(self) -> None:
        self.principals = {
            "lp_a": _principal(1),
            "lp_b": _principal(1),
            "lp_c": _principal(2),
            "lp_limited": _principal(1, per_minute=600),
            "lp_busy": _principal(1, per_minute=600),
            "lp_shared": _principal(1, per_minute=120),
            "lp_quiet": _principal(1, per_minute=5),
        }
        self.lookups: Counter[str] = Counter()

    async def resolve(self, token: str, workspace_id: int | None = None) -> principals.Principal:
        self.lookups[token] += 1
        principal = self.principals.get(token)
        if principal is None:
            raise errors.unauthenticated("invalid or expired token")
        return principal


class SlowQuery(protos.query_pb2_grpc.QueryServiceServicer):
    """An overview taking COMPUTE_SECONDS, saying which computation of which workspace it is."""

    def __init__(self) -> None:
        self.computed = 0
        self.abandoned = asyncio.Event()

    async def GetWorkspaceRegions(self, request, context):  # noqa: N802
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            self.abandoned.set()
            raise
        return protos.common_pb2.BreakdownResponse()

    async def GetWorkspaceOverview(self, request, context):  # noqa: N802
        self.computed += 1
        number = self.computed
        workspace = principals.current().workspace_id
        await asyncio.sleep(COMPUTE_SECONDS)
        return protos.common_pb2.OverviewResponse(
            totals=protos.common_pb2.Totals(clicks=number),
            meta=protos.common_pb2.ResponseMeta(notices=[f"workspace {workspace}"]),
        )


@dataclass
class Backend:
    address: str
    query: SlowQuery
    resolver: CountingResolver


@pytest_asyncio.fixture(loop_scope="session")
async def backend() -> AsyncIterator[Backend]:
    """The slow QueryService behind the services' own error and auth interceptors."""
    resolver = CountingResolver()
    query = SlowQuery()
    server = grpc.aio.server(
        interceptors=[ErrorInterceptor(), AuthInterceptor(resolver, contract().policies)]  # type: ignore[arg-type]
    )
    protos.query_pb2_grpc.add_QueryServiceServicer_to_server(query, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield Backend(f"127.0.0.1:{port}", query, resolver)
    await server.stop(grace=None)


def _app(backend: Backend, cache: SnapshotCache) -> Starlette:
    address = backend.address
    settings = Settings(
        query_addr=address,
        live_addr=address,
        export_addr=address,
        audit_addr=address,
        gateway_deadline_seconds=5.0,
    )
    return create_app(settings, wrap_pipeline=cache.wrap, on_shutdown=[cache.aclose])


class CountingRedis(Redis):
    """A real Redis client counting the commands it sends (pipelines aside)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: Counter[str] = Counter()

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands[str(args[0]).upper()] += 1
        return await super().execute_command(*args, **options)


@dataclass
class Gateways:
    """Copies of the gateway sharing one Redis prefix, and a client on each."""

    clients: list[httpx.AsyncClient]
    prefix: str
    redis: list[CountingRedis]

    def lookups(self) -> int:
        """The snapshot reads all copies sent to Redis so far (each one script call)."""
        return sum(r.commands["EVALSHA"] + r.commands["EVAL"] for r in self.redis)

    async def get(
        self, token: str = "lp_a", days: int = 7, copy: int = 0, **headers: str
    ) -> httpx.Response:
        headers["authorization"] = f"Bearer {token}"
        return await self.clients[copy].get(f"{OVERVIEW}?days={days}", headers=headers)

    async def burst(self, count: int, copies: int = 1, **kwargs: object) -> list[httpx.Response]:
        return list(
            await asyncio.gather(
                *(self.get(copy=n % copies, **kwargs) for n in range(count))  # type: ignore[arg-type]
            )
        )


@asynccontextmanager
async def gateways(backend: Backend, copies: int = 1, **options: object) -> AsyncIterator[Gateways]:
    """copies of the gateway, each with its own SnapshotCache on one prefix (deleted after)."""
    prefix = f"lptest-{uuid.uuid4().hex[:12]}"
    redis = Redis.from_url(REDIS_URL)
    # A loaded machine must not make the cache skip Redis (a timeout) in the middle of a test.
    settings: dict[str, object] = {
        "ttl_seconds": 60,
        "auth_ttl_seconds": 3.0,
        "timeout_seconds": 2.0,
        **options,
    }
    try:
        async with AsyncExitStack() as stack:
            clients = []
            counting = []
            for _ in range(copies):
                counting.append(CountingRedis.from_url(REDIS_URL))
                cache = SnapshotCache(counting[-1], prefix=prefix, **settings)  # type: ignore[arg-type]
                port = await stack.enter_async_context(asgi_serving(_app(backend, cache)))
                client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
                clients.append(await stack.enter_async_context(client))
            yield Gateways(clients, prefix, counting)
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


def _caches(responses: list[httpx.Response]) -> Counter[str]:
    for response in responses:
        assert response.status_code == 200, response.text
    return Counter(response.headers["x-cache"] for response in responses)


async def test_identical_misses_compute_once(backend: Backend) -> None:
    async with gateways(backend) as gw:
        await gw.get(days=1)  # the memo: the workspace is known, its day-2 snapshot is not
        before = backend.query.computed
        responses = await gw.burst(16, days=2)
        assert backend.query.computed == before + 1
        assert _caches(responses) == {"MISS": 1, "HIT": 15}
        assert len({response.content for response in responses}) == 1


async def test_two_gateway_copies_compute_once_through_the_redis_lock(backend: Backend) -> None:
    async with gateways(backend, copies=2) as gw:
        await gw.get(days=1, copy=0)
        await gw.get(days=1, copy=1)
        before = backend.query.computed
        responses = await gw.burst(16, copies=2, days=3)
        assert backend.query.computed == before + 1
        assert _caches(responses) == {"MISS": 1, "HIT": 15}
        assert len({response.content for response in responses}) == 1


async def test_misses_of_a_new_credential_compute_once(backend: Backend) -> None:
    async with gateways(backend, memo_check=MemoCheck(backend.resolver)) as gw:
        before = backend.query.computed
        lookups = backend.resolver.lookups["lp_b"]
        responses = await gw.burst(16, token="lp_b", days=4)
        assert backend.query.computed == before + 1
        assert _caches(responses) == {"MISS": 1, "HIT": 15}
        # One check of the credential by the gateway, one by the service that computed.
        assert backend.resolver.lookups["lp_b"] == lookups + 2


async def test_expired_memo_is_rechecked_without_the_query(backend: Backend) -> None:
    async with gateways(
        backend, auth_ttl_seconds=0.5, memo_check=MemoCheck(backend.resolver)
    ) as gw:
        first = await gw.get(days=5)
        computed = backend.query.computed
        lookups = backend.resolver.lookups["lp_a"]
        await asyncio.sleep(0.7)  # the memo has expired, the snapshot has not
        responses = await gw.burst(16, days=5)
        assert _caches(responses) == {"HIT": 16}
        assert {response.content for response in responses} == {first.content}
        assert backend.query.computed == computed
        assert backend.resolver.lookups["lp_a"] == lookups + 1  # one check for all 16


async def test_revoked_key_is_refused_once_its_memo_expires(backend: Backend) -> None:
    backend.resolver.principals["lp_revoked"] = _principal(1)
    async with gateways(
        backend, auth_ttl_seconds=0.5, memo_check=MemoCheck(backend.resolver), hot_seconds=5.0
    ) as gw:
        assert (await gw.get(token="lp_revoked", days=6)).status_code == 200
        assert (await gw.get(token="lp_revoked", days=6)).headers["x-cache"] == "HIT"
        del backend.resolver.principals["lp_revoked"]
        await asyncio.sleep(0.7)
        refused = await gw.get(token="lp_revoked", days=6)
        assert refused.status_code == 401, refused.text
        assert "x-cache" not in refused.headers or refused.headers["x-cache"] == "MISS"
        # Another key of the workspace is confirmed by the gateway and served the snapshot.
        shared = await gw.get(token="lp_b", days=6)
        assert shared.headers["x-cache"] == "HIT"
        # Another workspace never is.
        other = await gw.get(token="lp_c", days=6)
        assert other.json()["data"]["meta"]["notices"] == ["workspace 2"]


async def test_a_memo_about_to_expire_is_renewed_while_it_serves(backend: Backend) -> None:
    async with gateways(
        backend, auth_ttl_seconds=2.0, memo_check=MemoCheck(backend.resolver), hot_seconds=0
    ) as gw:
        await gw.get(days=11)  # MISS: the memo lives 2 s
        lookups = backend.resolver.lookups["lp_a"]
        await asyncio.sleep(1.6)  # under a quarter of its life left
        assert (await gw.get(days=11)).headers["x-cache"] == "HIT"  # the check runs meanwhile
        await asyncio.sleep(0.2)
        assert backend.resolver.lookups["lp_a"] == lookups + 1  # before the memo expired
        await asyncio.sleep(0.6)  # past the first memo's end
        responses = await gw.burst(16, days=11)
        assert _caches(responses) == {"HIT": 16}
        assert backend.resolver.lookups["lp_a"] == lookups + 1  # renewed ahead, once


async def test_a_refused_renewal_leaves_the_memo_to_expire(backend: Backend) -> None:
    backend.resolver.principals["lp_gone"] = _principal(1)
    async with gateways(
        backend, auth_ttl_seconds=2.0, memo_check=MemoCheck(backend.resolver), hot_seconds=0
    ) as gw:
        assert (await gw.get(token="lp_gone", days=12)).status_code == 200
        del backend.resolver.principals["lp_gone"]
        await asyncio.sleep(1.6)
        assert (await gw.get(token="lp_gone", days=12)).headers["x-cache"] == "HIT"
        await asyncio.sleep(0.8)
        refused = await gw.get(token="lp_gone", days=12)
        assert refused.status_code == 401, refused.text


async def test_stale_snapshot_is_served_while_one_request_refreshes_it(backend: Backend) -> None:
    async with gateways(backend, ttl_seconds=1, stale_seconds=60, revalidate_seconds=30) as gw:
        first = await gw.get(days=8)
        computed = backend.query.computed
        await asyncio.sleep(1.1)
        responses = await gw.burst(16, days=8)
        assert _caches(responses) == {"UPDATING": 16}
        assert {response.content for response in responses} == {first.content}
        assert all(r.headers["warning"].startswith("110") for r in responses)
        await asyncio.sleep(COMPUTE_SECONDS + 0.3)
        assert backend.query.computed == computed + 1  # one refresh for all of them
        fresh = await gw.get(days=8)
        assert fresh.headers["x-cache"] == "HIT"
        assert fresh.content != first.content


async def test_past_the_revalidation_window_a_miss_waits_for_the_answer(
    backend: Backend,
) -> None:
    async with gateways(backend, ttl_seconds=1, stale_seconds=60, revalidate_seconds=1) as gw:
        first = await gw.get(days=9)
        computed = backend.query.computed
        await asyncio.sleep(2.2)
        responses = await gw.burst(8, days=9)
        assert _caches(responses) == {"MISS": 1, "HIT": 7}
        assert backend.query.computed == computed + 1
        assert responses[0].content != first.content


async def test_hot_copies_answer_unlimited_credentials_and_limited_ones_still_spend(
    backend: Backend,
) -> None:
    async with gateways(backend, hot_seconds=5.0, memo_check=MemoCheck(backend.resolver)) as gw:
        await gw.get(days=10)
        computed = backend.query.computed
        hits = await gw.burst(8, days=10)
        assert _caches(hits) == {"HIT": 8}
        assert "x-ratelimit-limit" not in hits[0].headers
        # The gateway confirms the limited key (600 a minute) and spends from its bucket.
        limited = [await gw.get(token="lp_limited", days=10) for _ in range(3)]
        assert backend.query.computed == computed
        assert _caches(limited) == {"HIT": 3}
        remaining = [int(r.headers["x-ratelimit-remaining"]) for r in limited]
        assert remaining == sorted(remaining, reverse=True) and remaining[0] > remaining[-1]
        # With the snapshot gone from Redis the unlimited key is still answered from memory (for
        # the moment hot_seconds allows); the limited one reads Redis and computes it again.
        redis = Redis.from_url(REDIS_URL)
        try:
            await redis.delete(*[k async for k in redis.scan_iter(match=f"{gw.prefix}:snap:*")])
        finally:
            await redis.aclose()
        assert (await gw.get(days=10)).headers["x-cache"] == "HIT"
        assert (await gw.get(token="lp_limited", days=10)).headers["x-cache"] == "MISS"


async def test_an_uncached_call_ends_when_its_client_goes_away(backend: Backend) -> None:
    async with gateways(backend) as gw:
        backend.query.abandoned.clear()
        with pytest.raises(httpx.ReadTimeout):
            await gw.clients[0].get(
                "/api/analytics/workspace/regions",
                headers={"authorization": "Bearer lp_a", "cache-control": "no-cache"},
                timeout=0.5,
            )
        await asyncio.wait_for(backend.query.abandoned.wait(), 3)


def _remaining(response: httpx.Response) -> int:
    return int(response.headers["x-ratelimit-remaining"])


async def test_a_busy_limited_credential_spends_leased_tokens_from_memory(
    backend: Backend,
) -> None:
    async with gateways(
        backend, hot_seconds=5.0, lease_share=0.1, memo_check=MemoCheck(backend.resolver)
    ) as gw:
        await gw.get(days=11)  # computed for the workspace
        await gw.get(token="lp_busy", days=11)  # confirmed by the gateway (600 a minute)
        before = gw.lookups()
        began = asyncio.get_running_loop().time()
        served = [await gw.get(token="lp_busy", days=11) for _ in range(100)]
        elapsed = asyncio.get_running_loop().time() - began
        assert _caches(served) == {"HIT": 100}
        # Leases of up to 60 tokens (a tenth of 600 a minute): far fewer reads than requests.
        assert gw.lookups() - before <= 20
        # Remaining never claims more than the bucket holds (600 a minute refill 10 a second),
        # and the tokens leased are counted as the credential's (each read one less).
        refilled = int(elapsed * 10) + 1
        for number, response in enumerate(served, start=1):
            assert response.headers["x-ratelimit-limit"] == "600"
            assert _remaining(response) <= 600 - number + refilled
        assert _remaining(served[-1]) >= 600 - 100 - 64
        # Within a lease each read is one less; a new lease may start from a refilled bucket.
        steps = [_remaining(b) - _remaining(a) for a, b in zip(served, served[1:], strict=False)]
        assert steps.count(-1) >= len(steps) - 20, steps


async def test_two_gateway_copies_never_grant_more_than_the_shared_bucket(
    backend: Backend,
) -> None:
    async with gateways(
        backend,
        copies=2,
        hot_seconds=5.0,
        lease_share=0.5,
        lease_busy_reads=2,
        memo_check=MemoCheck(backend.resolver),
    ) as gw:
        await gw.get(days=12)  # computed for the workspace; lp_shared is confirmed by each copy
        began = asyncio.get_running_loop().time()
        answers: list[httpx.Response] = []
        for _ in range(15):
            answers += await gw.burst(20, copies=2, token="lp_shared", days=12)
        elapsed = asyncio.get_running_loop().time() - began
        granted = [r for r in answers if r.status_code == 200]
        refused = [r for r in answers if r.status_code == 429]
        assert len(granted) + len(refused) == len(answers)
        # 120 a minute: the bucket's 120 and the two a second refilled meanwhile, never more.
        assert len(granted) <= 120 + int(elapsed * 2) + 1, (len(granted), elapsed)
        assert len(granted) >= 120 - 2 * 60  # at most a lease lost by each copy
        assert {r.headers["x-cache"] for r in granted} == {"HIT"}
        for response in refused:
            assert response.json()["error"]["code"] == "rate_limited"
            assert response.headers["x-ratelimit-remaining"] == "0"
            assert int(response.headers["retry-after"]) >= 1
        assert gw.lookups() < len(answers) - len(granted) // 2


async def test_a_quiet_limited_credential_spends_one_request_per_read(backend: Backend) -> None:
    async with gateways(backend, hot_seconds=5.0, memo_check=MemoCheck(backend.resolver)) as gw:
        await gw.get(days=13)  # computed for the workspace
        served = [await gw.get(token="lp_quiet", days=13)]  # confirmed by the gateway
        before = gw.lookups()
        served += [await gw.get(token="lp_quiet", days=13) for _ in range(4)]
        assert _caches(served) == {"HIT": 5}
        assert [_remaining(r) for r in served] == [4, 3, 2, 1, 0]
        refused = await gw.get(token="lp_quiet", days=13)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert refused.headers["x-ratelimit-limit"] == "5"
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert int(refused.headers["retry-after"]) >= 1
        assert gw.lookups() - before == 5  # one bucket call per read, as without leases
