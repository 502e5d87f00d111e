"""Stale snapshots: kept past their TTL, served (X-Cache: STALE) only in place of a 503/504 of
the same cacheable request, to a caller whose memo, or whose failed but authorized call, names the
snapshot's workspace."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from gateway.cache import STALE_WARNING, SnapshotCache
from services import errors, protos
from services.auth import principal as principals
from services.contract.compiled import contract
from services.grpc_server.interceptors import AuthInterceptor, ErrorInterceptor
from tests.gateway.test_cache import OVERVIEW, REDIS_URL, Backend, FakeResolver, _app, serving

pytestmark = pytest.mark.asyncio(loop_scope="session")

TTL = 60
AUTH_TTL = 1.0


@dataclass
class Switch:
    """How the fake service answers: normally, UNAVAILABLE, too late, or INVALID_ARGUMENT."""

    mode: str = "up"
    calls: int = 0


class FlakyQuery(protos.query_pb2_grpc.QueryServiceServicer):
    def __init__(self, switch: Switch) -> None:
        self.switch = switch

    async def GetWorkspaceOverview(self, request, context):  # noqa: N802
        self.switch.calls += 1
        if self.switch.mode == "down":
            raise errors.unavailable("ClickHouse is unreachable; hourly buckets need it")
        if self.switch.mode == "slow":
            await asyncio.sleep(3)  # past the gateway's deadline (2 s): 504
        if self.switch.mode == "invalid":
            raise errors.invalid_argument("days", "days must be at most 90")
        workspace = principals.current().workspace_id
        return protos.common_pb2.OverviewResponse(
            totals=protos.common_pb2.Totals(clicks=self.switch.calls),
            meta=protos.common_pb2.ResponseMeta(notices=[f"workspace {workspace}"]),
        )


@dataclass
class Stale:
    http: httpx.AsyncClient
    switch: Switch
    now: list[float] = field(default_factory=lambda: [1_900_000_000.0])

    async def get(self, path: str, token: str = "lp_a") -> httpx.Response:
        return await self.http.get(path, headers={"authorization": f"Bearer {token}"})


@pytest_asyncio.fixture(loop_scope="session")
async def stale() -> AsyncIterator[Stale]:
    switch = Switch()
    server = grpc.aio.server(
        interceptors=[ErrorInterceptor(), AuthInterceptor(FakeResolver(), contract().policies)]  # type: ignore[arg-type]
    )
    protos.query_pb2_grpc.add_QueryServiceServicer_to_server(FlakyQuery(switch), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    prefix = f"lptest-{uuid.uuid4().hex[:12]}"
    now = [1_900_000_000.0]
    cache = SnapshotCache(
        Redis.from_url(REDIS_URL),
        ttl_seconds=TTL,
        auth_ttl_seconds=AUTH_TTL,
        stale_seconds=600,
        prefix=prefix,
        clock=lambda: now[0],
    )
    redis = Redis.from_url(REDIS_URL)
    backend = Backend(f"127.0.0.1:{port}", None, None)  # type: ignore[arg-type]
    try:
        async with serving(_app(backend, cache)) as http:
            yield Stale(http, switch, now)
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await server.stop(grace=None)


def _is_stale(response: httpx.Response, first: httpx.Response, age: int) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["x-cache"] == "STALE"
    assert response.headers["warning"] == STALE_WARNING
    assert int(response.headers["age"]) == age
    assert response.content == first.content


@pytest.mark.parametrize("mode", ["down", "slow"])
async def test_stale_snapshot_replaces_a_503_or_504(stale: Stale, mode: str) -> None:
    first = await stale.get(f"{OVERVIEW}?days=7")
    assert first.headers["x-cache"] == "MISS"
    stale.now[0] += TTL + 5  # past the fresh TTL: no longer a HIT
    stale.switch.mode = mode
    _is_stale(await stale.get(f"{OVERVIEW}?days=7"), first, TTL + 5)
    # Only for that request: another one's answer is the service's error.
    other = await stale.get(f"{OVERVIEW}?days=8")
    assert other.status_code == (503 if mode == "down" else 504), other.text
    assert other.json()["success"] is False and other.headers["x-cache"] == "MISS"


async def test_a_stale_snapshot_is_never_a_hit_while_the_service_answers(stale: Stale) -> None:
    first = await stale.get(f"{OVERVIEW}?days=7")
    stale.now[0] += TTL + 1
    fresh = await stale.get(f"{OVERVIEW}?days=7")
    assert fresh.headers["x-cache"] == "MISS" and fresh.content != first.content
    stale.now[0] += TTL + 1
    stale.switch.mode = "invalid"  # not a 503/504: the service's own answer
    refused = await stale.get(f"{OVERVIEW}?days=7")
    assert refused.status_code == 400 and refused.headers["x-cache"] == "MISS"


async def test_another_workspace_never_gets_the_stale_snapshot(stale: Stale) -> None:
    first = await stale.get(f"{OVERVIEW}?days=7", token="lp_a")  # workspace 1
    theirs = await stale.get(f"{OVERVIEW}?days=7", token="lp_c")  # workspace 2
    assert theirs.status_code == 200 and theirs.content != first.content
    stale.now[0] += TTL + 1
    stale.switch.mode = "down"
    _is_stale(await stale.get(f"{OVERVIEW}?days=7", token="lp_c"), theirs, TTL + 1)
    # lp_b is workspace 1's: once the service has authorized it, it gets workspace 1's snapshot
    ours = await stale.get(f"{OVERVIEW}?days=7", token="lp_b")
    _is_stale(ours, first, TTL + 1)


async def test_past_the_memo_the_authorized_failure_names_the_workspace(stale: Stale) -> None:
    first = await stale.get(f"{OVERVIEW}?days=7")
    stale.now[0] += TTL + 1
    stale.switch.mode = "down"
    await asyncio.sleep(AUTH_TTL + 0.3)  # the memo lives in Redis time
    # The service authorized this caller for workspace 1 before failing: its snapshot bridges.
    _is_stale(await stale.get(f"{OVERVIEW}?days=7"), first, TTL + 1)
    # Another workspace's caller, authorized for its own workspace, never gets this one.
    theirs = await stale.get(f"{OVERVIEW}?days=7", token="lp_c")
    assert theirs.status_code == 503 and theirs.headers["x-cache"] == "MISS"
    # A caller the service never authorized (an unknown token) gets the service's 401.
    unknown = await stale.get(f"{OVERVIEW}?days=7", token="lp_nobody")
    assert unknown.status_code == 401 and unknown.headers["x-cache"] == "MISS"


async def test_no_stale_snapshot_past_the_memo_without_an_authorized_answer(stale: Stale) -> None:
    await stale.get(f"{OVERVIEW}?days=9")
    stale.now[0] += TTL + 1
    stale.switch.mode = "slow"  # a 504: the call never ended, no workspace named
    await asyncio.sleep(AUTH_TTL + 0.3)
    answer = await stale.get(f"{OVERVIEW}?days=9")
    assert answer.status_code == 504 and answer.headers["x-cache"] == "MISS"
