"""With Redis unreachable, or stopping mid-subscription, the feed and the stats fail UNAVAILABLE."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from redis.asyncio import Redis

from services import errors, protos
from services.live import feed, stats
from tests.ports import free_port
from tests.services.live.conftest import PREFIX
from tests.services.live.test_feed import event, publish

LiveRequest = protos.live_pb2.LiveRequest


@pytest.fixture
async def closed() -> AsyncIterator[Redis]:
    """A client of a port nothing listens on."""
    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    yield client
    await client.aclose()


@pytest.fixture
def own_redis() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A redis-server of this test (it stops it), and its URL."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True, check=False
            ).stdout.strip()
            != b"PONG"
        ):
            assert time.monotonic() < deadline, "own redis-server did not start"
            time.sleep(0.05)
        yield process, f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait()


def _unavailable(raised: pytest.ExceptionInfo[errors.ApiError], what: str) -> None:
    assert raised.value.code is grpc.StatusCode.UNAVAILABLE
    assert raised.value.reason == "unavailable"
    assert f"{what} is unavailable: Redis is unreachable" in raised.value.message


async def test_listing_and_stats_are_unavailable_without_redis(closed: Redis) -> None:
    with pytest.raises(errors.ApiError) as listing:
        await feed.list_live(closed, 1, LiveRequest(), prefix=PREFIX)
    _unavailable(listing, "the live feed")
    with pytest.raises(errors.ApiError) as stats_read:
        await stats.live_stats(closed, 1, prefix=PREFIX)
    _unavailable(stats_read, "the live stats")


@pytest.mark.parametrize("way", ["direct", "hub"])
async def test_subscribing_is_unavailable_without_redis(closed: Redis, way: str) -> None:
    stream = _follow(closed, way)
    with pytest.raises(errors.ApiError) as raised:
        async with asyncio.timeout(10):
            await anext(stream)
    _unavailable(raised, "the live feed")


@pytest.mark.parametrize("way", ["direct", "hub"])
async def test_a_subscription_ends_unavailable_when_redis_stops(
    own_redis: tuple[subprocess.Popen[bytes], str], way: str
) -> None:
    process, url = own_redis
    redis = Redis.from_url(url, socket_connect_timeout=1)
    try:
        stream = _follow(redis, way)
        first = asyncio.create_task(anext(stream))
        await asyncio.sleep(0.3)  # following
        await publish(redis, 7, [event(1)])
        assert (await asyncio.wait_for(first, 5)).link_id == 1
        process.kill()
        process.wait()
        with pytest.raises(errors.ApiError) as raised:
            async with asyncio.timeout(10):
                await anext(stream)
        _unavailable(raised, "the live feed")
    finally:
        await redis.aclose()


def _follow(redis: Redis, way: str) -> Any:
    if way == "direct":
        return feed.subscribe(redis, 7, LiveRequest(), prefix=PREFIX, block_ms=100)
    return feed.FeedHub(redis, prefix=PREFIX, block_ms=100).subscribe(7, LiveRequest())
