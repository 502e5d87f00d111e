"""The snapshot cache: the gateway under uvicorn, real Redis (db 15), a fake backend behind the
real auth and error interceptors."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc
import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.cache import SnapshotCache, is_cacheable
from services import errors, protos
from services.auth import principal as principals
from services.config import Settings
from services.contract.compiled import contract
from services.grpc_server.interceptors import WORKSPACE_TRAILER, AuthInterceptor, ErrorInterceptor
from services.stores.redisclient import create_redis
from tests.asgi_server import serving as asgi_serving
from tests.ports import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

REDIS_URL = "redis://127.0.0.1:6379/15"
OVERVIEW = "/api/analytics/workspace/overview"
# Long enough that a loaded machine does not expire the memo between a request and the check.
AUTH_TTL = 3.0


def _principal(workspace_id: int, workspace_ids: tuple[int, ...] = ()) -> principals.Principal:
    return principals.Principal(
        actor=f"api_key:{workspace_id}",
        workspace_id=workspace_id,
        organization_id=1,
        workspace_ids=workspace_ids or (workspace_id,),
        scopes=frozenset({"analytics:read"}),
        plan="business",
        features=frozenset({"deep_links"}),
        max_days=1095,
        timezone="UTC",
        currency="USD",
    )


class FakeResolver:
    """Tokens to principals, as the PostgreSQL resolver would give them (no caching)."""

    def __init__(self) -> None:
        self.principals: dict[str, principals.Principal] = {
            "lp_a": _principal(1),
            "lp_b": _principal(1),
            "lp_c": _principal(2),
            "lps_multi": _principal(1, (1, 2)),
        }

    async def resolve(self, token: str, workspace_id: int | None = None) -> principals.Principal:
        principal = self.principals.get(token)
        if principal is None:
            raise errors.unauthenticated("invalid or expired token")
        if workspace_id is not None and workspace_id != principal.workspace_id:
            if workspace_id not in principal.workspace_ids:
                raise errors.permission_denied("workspace", "not a member of that workspace")
            principal = _principal(workspace_id, principal.workspace_ids)
        return principal


class FakeQuery(protos.query_pb2_grpc.QueryServiceServicer):
    """Answers that say which call of which workspace produced them."""

    def __init__(self, calls: Counter[str]) -> None:
        self.calls = calls

    def _count(self, rpc: str) -> int:
        self.calls[rpc] += 1
        return self.calls[rpc]

    async def GetWorkspaceOverview(self, request, context):  # noqa: N802
        number = self._count("GetWorkspaceOverview")
        workspace = principals.current().workspace_id
        return protos.common_pb2.OverviewResponse(
            totals=protos.common_pb2.Totals(clicks=number),
            meta=protos.common_pb2.ResponseMeta(
                timezone=request.timezone or "UTC", notices=[f"workspace {workspace}"]
            ),
        )

    async def GetWorkspaceTopTags(self, request, context):  # noqa: N802
        context.set_trailing_metadata((("x-handler", "kept"),))
        number = self._count("GetWorkspaceTopTags")
        return protos.common_pb2.BreakdownResponse(dimension=f"tags {number}")

    async def GetWorkspaceContinents(self, request, context):  # noqa: N802
        await context.send_initial_metadata((("x-http-status", "202"),))
        number = self._count("GetWorkspaceContinents")
        return protos.common_pb2.BreakdownResponse(dimension=f"continents {number}")

    async def GetWorkspaceTimeseries(self, request, context):  # noqa: N802
        self._count("GetWorkspaceTimeseries")
        raise errors.invalid_argument("days", "days must be at most 90")

    async def GetWorkspaceRegions(self, request, context):  # noqa: N802
        self._count("GetWorkspaceRegions")
        raise RuntimeError("boom")

    async def GetLinkTrafficFlow(self, request, context):  # noqa: N802
        number = self._count("GetLinkTrafficFlow")
        return protos.query_pb2.TrafficFlowResponse(
            meta=protos.common_pb2.ResponseMeta(notices=[str(number)])
        )

    async def GetConversionDetails(self, request, context):  # noqa: N802
        number = self._count("GetConversionDetails")
        return protos.query_pb2.ConversionDetailsResponse(next_cursor=str(number))


@dataclass
class Backend:
    address: str
    calls: Counter[str]
    resolver: FakeResolver


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def backend() -> AsyncIterator[Backend]:
    """The fake QueryService behind the services' own error and auth interceptors."""
    calls: Counter[str] = Counter()
    resolver = FakeResolver()
    server = grpc.aio.server(
        interceptors=[ErrorInterceptor(), AuthInterceptor(resolver, contract().policies)]  # type: ignore[arg-type]
    )
    protos.query_pb2_grpc.add_QueryServiceServicer_to_server(FakeQuery(calls), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield Backend(f"127.0.0.1:{port}", calls, resolver)
    await server.stop(grace=None)


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """app under uvicorn on a loopback socket, and a client on it."""
    async with asgi_serving(app) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client


def _app(backend: Backend, cache: SnapshotCache) -> Starlette:
    settings = Settings(
        query_addr=backend.address,
        live_addr=backend.address,
        export_addr=backend.address,
        audit_addr=backend.address,
        gateway_deadline_seconds=2.0,
        gateway_max_body_bytes=1 << 20,
        gateway_health_timeout_seconds=1.0,
        gateway_shutdown_grace_seconds=1.0,
    )
    return create_app(settings, wrap_pipeline=cache.wrap, on_shutdown=[cache.aclose])


@dataclass
class Cached:
    http: httpx.AsyncClient
    redis: Redis
    prefix: str
    calls: Counter[str]

    async def get(self, path: str, token: str | None = "lp_a", **headers: str) -> httpx.Response:
        if token:
            headers["authorization"] = f"Bearer {token}"
        return await self.http.get(path, headers=headers)

    async def keys(self) -> list[bytes]:
        return [key async for key in self.redis.scan_iter(match=f"{self.prefix}:*")]


@pytest_asyncio.fixture(loop_scope="session")
async def cached(backend: Backend) -> AsyncIterator[Cached]:
    """The gateway with a snapshot cache under a key prefix of its own (deleted afterwards)."""
    prefix = f"lptest-{uuid.uuid4().hex[:12]}"
    cache = SnapshotCache(
        Redis.from_url(REDIS_URL), ttl_seconds=60, auth_ttl_seconds=AUTH_TTL, prefix=prefix
    )
    redis = Redis.from_url(REDIS_URL)
    try:
        async with serving(_app(backend, cache)) as http:
            yield Cached(http, redis, prefix, backend.calls)
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_miss_then_hit_with_identical_body(cached: Cached) -> None:
    before = cached.calls["GetWorkspaceOverview"]
    miss = await cached.get(f"{OVERVIEW}?days=7", **{"x-request-id": "first"})
    assert miss.status_code == 200, miss.text
    assert miss.headers["x-cache"] == "MISS"
    hit = await cached.get(f"{OVERVIEW}?days=7", **{"x-request-id": "second"})
    assert hit.status_code == 200
    assert hit.headers["x-cache"] == "HIT"
    assert hit.content == miss.content
    assert hit.headers["content-type"] == miss.headers["content-type"] == "application/json"
    assert hit.headers["x-request-id"] == "second"
    assert int(hit.headers["age"]) <= 1
    assert cached.calls["GetWorkspaceOverview"] == before + 1
    keys = {key.decode().split(":")[1] for key in await cached.keys()}
    assert keys == {"auth", "snap"}


async def test_parameter_order_spelling_and_format_share_a_key(cached: Cached) -> None:
    first = await cached.get(f"{OVERVIEW}?days=7&timezone=Europe/Paris&campaignId=3")
    assert first.headers["x-cache"] == "MISS"
    for query in (
        "timezone=Europe/Paris&campaign_id=3&days=07",
        "campaignId=03&days=7&timezone=Europe/Paris",
    ):
        again = await cached.get(f"{OVERVIEW}?{query}")
        assert again.headers["x-cache"] == "HIT", query
        assert again.content == first.content
    other = await cached.get(f"{OVERVIEW}?days=8&timezone=Europe/Paris&campaignId=3")
    assert other.headers["x-cache"] == "MISS"


async def test_memo_is_per_token_and_snapshots_are_per_workspace(cached: Cached) -> None:
    a_one = await cached.get(f"{OVERVIEW}?days=11", token="lp_a")
    a_two = await cached.get(f"{OVERVIEW}?days=12", token="lp_a")
    assert a_one.headers["x-cache"] == a_two.headers["x-cache"] == "MISS"
    # Another key of the same workspace goes to the service once (it has not been authorized
    # here yet), then shares the workspace's snapshots.
    b_one = await cached.get(f"{OVERVIEW}?days=11", token="lp_b")
    assert b_one.headers["x-cache"] == "MISS"
    b_two = await cached.get(f"{OVERVIEW}?days=12", token="lp_b")
    assert b_two.headers["x-cache"] == "HIT"
    assert b_two.content == a_two.content
    # Another workspace never gets them, whatever it asks.
    for days in (11, 12, 11):
        c = await cached.get(f"{OVERVIEW}?days={days}", token="lp_c")
        assert c.json()["data"]["meta"]["notices"] == ["workspace 2"]
    assert c.headers["x-cache"] == "HIT"


async def test_x_workspace_id_is_part_of_the_credential(cached: Cached) -> None:
    one = await cached.get(f"{OVERVIEW}?days=21", token="lps_multi", **{"x-workspace-id": "1"})
    assert one.json()["data"]["meta"]["notices"] == ["workspace 1"]
    two = await cached.get(f"{OVERVIEW}?days=21", token="lps_multi", **{"x-workspace-id": "2"})
    assert two.headers["x-cache"] == "MISS"
    assert two.json()["data"]["meta"]["notices"] == ["workspace 2"]
    denied = await cached.get(f"{OVERVIEW}?days=21", token="lps_multi", **{"x-workspace-id": "3"})
    assert denied.status_code == 403


async def test_non_cacheable_routes_are_never_cached(cached: Cached) -> None:
    for path, rpc in (
        ("/api/analytics/5/traffic-flow", "GetLinkTrafficFlow"),
        ("/api/analytics/conversions/details", "GetConversionDetails"),
    ):
        before = cached.calls[rpc]
        first = await cached.get(path)
        second = await cached.get(path)
        assert first.status_code == second.status_code == 200, first.text
        assert "x-cache" not in first.headers and "x-cache" not in second.headers
        assert first.content != second.content
        assert cached.calls[rpc] == before + 2
    assert not [k for k in await cached.keys() if b"traffic-flow" in k or b"conversions" in k]


async def test_errors_and_other_statuses_are_never_cached(cached: Cached) -> None:
    for path, rpc, status in (
        ("/api/analytics/workspace/timeseries?days=400", "GetWorkspaceTimeseries", 400),
        ("/api/analytics/workspace/regions", "GetWorkspaceRegions", 500),
        ("/api/analytics/workspace/continents", "GetWorkspaceContinents", 202),
    ):
        before = cached.calls[rpc]
        for _ in range(2):
            response = await cached.get(path)
            assert response.status_code == status, response.text
            assert response.headers["x-cache"] == "MISS"
        assert cached.calls[rpc] == before + 2
    for token in (None, "lp_unknown"):
        for _ in range(2):
            assert (await cached.get(f"{OVERVIEW}?days=31", token=token)).status_code == 401
    bad = await cached.get(f"{OVERVIEW}?days=31&nope=1")
    assert bad.status_code == 400
    keys = b" ".join(await cached.keys())
    for fragment in (b"timeseries", b"regions", b"continents"):
        assert fragment not in keys


async def test_no_cache_request_refreshes_the_snapshot(cached: Cached) -> None:
    first = await cached.get(f"{OVERVIEW}?days=41")
    assert (await cached.get(f"{OVERVIEW}?days=41")).headers["x-cache"] == "HIT"
    fresh = await cached.get(f"{OVERVIEW}?days=41", **{"cache-control": "no-cache"})
    assert fresh.headers["x-cache"] == "MISS"
    assert fresh.content != first.content
    again = await cached.get(f"{OVERVIEW}?days=41")
    assert again.headers["x-cache"] == "HIT"
    assert again.content == fresh.content


async def test_memo_expires_with_the_auth_cache(cached: Cached, backend: Backend) -> None:
    backend.resolver.principals["lp_revoked"] = _principal(1)
    assert (await cached.get(f"{OVERVIEW}?days=51", token="lp_revoked")).status_code == 200
    hit = await cached.get(f"{OVERVIEW}?days=51", token="lp_revoked")
    assert hit.headers["x-cache"] == "HIT"
    del backend.resolver.principals["lp_revoked"]
    await asyncio.sleep(AUTH_TTL + 0.2)
    gone = await cached.get(f"{OVERVIEW}?days=51", token="lp_revoked")
    assert gone.status_code == 401
    # The snapshot itself is still there for the keys that may see it.
    assert (await cached.get(f"{OVERVIEW}?days=51", token="lp_b")).status_code == 200
    assert (await cached.get(f"{OVERVIEW}?days=51", token="lp_b")).headers["x-cache"] == "HIT"


async def test_handler_trailers_are_kept_next_to_the_workspace(
    cached: Cached, backend: Backend
) -> None:
    async with grpc.aio.insecure_channel(backend.address) as channel:
        stub = protos.query_pb2_grpc.QueryServiceStub(channel)
        call = stub.GetWorkspaceTopTags(
            protos.common_pb2.AnalyticsQuery(), metadata=(("authorization", "Bearer lp_c"),)
        )
        await call
        trailers = dict(await call.trailing_metadata())
        assert trailers["x-handler"] == "kept"
        assert trailers[WORKSPACE_TRAILER] == "2"
        refused = stub.GetWorkspaceOverview(
            protos.common_pb2.AnalyticsQuery(), metadata=(("authorization", "Bearer lp_nobody"),)
        )
        with pytest.raises(grpc.aio.AioRpcError):
            await refused
        assert WORKSPACE_TRAILER not in dict(await refused.trailing_metadata())
    first = await cached.get("/api/analytics/workspace/top-tags", token="lp_c")
    second = await cached.get("/api/analytics/workspace/top-tags", token="lp_c")
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert first.content == second.content


@asynccontextmanager
async def _silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never answers (a hung Redis)."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def _redis_port(failure: str) -> AsyncIterator[int]:
    if failure == "closed port":
        yield free_port()
    else:
        async with _silent_server() as port:
            yield port


@pytest.mark.parametrize("failure", ["closed port", "no answer"])
async def test_redis_trouble_serves_uncached(
    backend: Backend, failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with _redis_port(failure) as port:
        cache = SnapshotCache(
            create_redis(f"redis://127.0.0.1:{port}/15", 0.1, 0.1),
            ttl_seconds=60,
            auth_ttl_seconds=AUTH_TTL,
            prefix=f"lptest-{uuid.uuid4().hex[:12]}",
        )
        async with serving(_app(backend, cache)) as http:
            before = backend.calls["GetWorkspaceOverview"]
            started = time.monotonic()
            for _ in range(3):
                response = await http.get(
                    f"{OVERVIEW}?days=61", headers={"authorization": "Bearer lp_a"}
                )
                assert response.status_code == 200, response.text
                assert response.headers["x-cache"] == "MISS"
            assert time.monotonic() - started < 2
            assert backend.calls["GetWorkspaceOverview"] == before + 3
    warnings = [r for r in caplog.records if r.name == "gateway.cache"]
    assert len(warnings) == 1  # at most one a minute
    assert "answering uncached" in warnings[0].getMessage()


async def test_only_marked_read_routes_are_cacheable() -> None:
    table = contract().routes
    cacheable = {route.key for route in table if is_cacheable(route)}
    assert f"GET {OVERVIEW}" in cacheable
    assert "GET /api/analytics/{link_id}/summary" in cacheable
    for route in table:
        if route.key in cacheable:
            assert route.service == "query"
            # The query API is the one POST read: its body is the key.
            assert route.http_method == "GET" or route.key == "POST /api/analytics/query"
    assert "POST /api/analytics/query" in cacheable
    for fragment in ("live", "export", "batch", "traffic-flow", "click-paths", "conversions"):
        assert not [key for key in cacheable if fragment in key], fragment
