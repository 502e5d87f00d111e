"""Event-id node ids leased from a real Redis: distinct per process, a configured one refused
while held, ids always after the node's previous holder (even one that crashed far ahead of the
clock), minting stopped when the lease cannot be renewed and resumed once it is."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from redis.asyncio import Redis

from services.config import Settings
from services.errors import ApiError
from services.ids import NODE_IDS, RESERVED_NODE_IDS, SEQUENCE_BITS, id_ms, now_ms
from services.stores.node_lease import (
    LeasedIds,
    LeaseTiming,
    NodeIdUnavailable,
    leased_ids,
    node_key,
)
from tests.services.devstack.redis_server import OwnRedis


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(Settings().redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def settings() -> Settings:
    """Settings under a key prefix of this test alone, with short leases."""
    return replace(
        Settings(),
        ingest_key_prefix=f"lp:test-lease:{uuid.uuid4().hex}",
        node_id=None,
        node_lease_ttl_seconds=1.5,
    )


async def _forget(redis: Redis, settings: Settings) -> None:
    keys = [key async for key in redis.scan_iter(f"{settings.ingest_key_prefix}:node:*")]
    if keys:
        await redis.delete(*keys)


async def test_copies_lease_distinct_nodes_and_a_configured_one_is_refused_while_held(
    redis: Redis, settings: Settings
) -> None:
    try:
        async with leased_ids(redis, settings) as first, leased_ids(redis, settings) as second:
            assert first.node_id != second.node_id
            assert {first.node_id, second.node_id}.isdisjoint(RESERVED_NODE_IDS)
            node = first.node_id
            held = replace(settings, node_id=node)
            with pytest.raises(NodeIdUnavailable, match=f"LINKPULSE_NODE_ID={first.node_id} is"):
                async with leased_ids(redis, held):
                    pass
            last = first.take(100)[-1]
        # Given up at the end: the configured id is free, and its ids follow the last ones.
        async with leased_ids(redis, held) as again:
            assert again.node_id == node
            assert again.next() > last
        with pytest.raises(NodeIdUnavailable, match="not usable"):
            async with leased_ids(redis, replace(settings, node_id=31)):
                pass
    finally:
        await _forget(redis, settings)


async def test_every_node_held_is_a_clear_error(redis: Redis, settings: Settings) -> None:
    far = 2**50  # a lease that does not expire during the test
    try:
        for node_id in NODE_IDS:
            await redis.set(node_key(settings.ingest_key_prefix, node_id), f"other {far} 0")
        with pytest.raises(NodeIdUnavailable, match="every event-id node id .255. .* is leased"):
            async with leased_ids(redis, settings):
                pass
    finally:
        await _forget(redis, settings)


async def test_a_crashed_holder_far_ahead_is_never_repeated(
    redis: Redis, settings: Settings
) -> None:
    timing = LeaseTiming(settings.node_lease_ttl_seconds)
    try:
        crashed = LeasedIds(redis, settings.ingest_key_prefix, timing, fixed_node=7)
        await crashed.acquire()
        # A burst runs its ids ahead of the clock, up to what it reserved (and no further).
        ahead = crashed.take((timing.reserve_ms // 2) << SEQUENCE_BITS)
        assert id_ms(ahead[-1]) > now_ms() + timing.reserve_ms // 3
        # It crashes: never renewed, never released. Meanwhile the node stays its own.
        successor = LeasedIds(redis, settings.ingest_key_prefix, timing, fixed_node=7)
        with pytest.raises(NodeIdUnavailable, match="leased by"):
            await successor.acquire()
        await asyncio.sleep(timing.ttl_seconds + 0.2)
        assert await successor.acquire() == 7
        assert successor.next() > ahead[-1]
        assert min(successor.take(1000)) > ahead[-1]
        # The crashed process comes back: its renewal fails and it mints nothing more.
        assert not await crashed.renew()
        with pytest.raises(ApiError):
            crashed.next()
        await successor.release()
    finally:
        await _forget(redis, settings)


async def test_minting_stops_without_renewals_and_resumes_with_them(tmp_path: Path) -> None:
    server = OwnRedis(tmp_path / "redis")
    server.start()
    client = Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    settings = replace(Settings(), node_id=None, node_lease_ttl_seconds=1.5, ingest_key_prefix="lp")
    try:
        async with leased_ids(client, settings) as ids:
            node = ids.node_id
            before = ids.take(10)[-1]
            server.kill()
            await asyncio.sleep(settings.node_lease_ttl_seconds + 0.2)
            with pytest.raises(ApiError) as refused:
                ids.take(1)
            assert refused.value.code == grpc.StatusCode.UNAVAILABLE
            server.start()  # same data (append-only file): the lease is still this process's
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                try:
                    after = ids.next()
                    break
                except ApiError:
                    assert asyncio.get_running_loop().time() < deadline, "minting never resumed"
                    await asyncio.sleep(0.1)
            assert after > before and ids.node_id == node
    finally:
        await client.aclose()
        server.stop()


async def test_a_node_taken_over_is_replaced_by_another(redis: Redis, settings: Settings) -> None:
    try:
        async with leased_ids(redis, settings) as ids:
            node = ids.node_id
            assert node is not None
            before = ids.take(50)[-1]
            # Another process overwrote the lease (an operator, a clock gone wrong).
            await redis.set(node_key(settings.ingest_key_prefix, node), f"intruder {2**50} 0")
            deadline = asyncio.get_running_loop().time() + 10
            while ids.node_id in (node, None):
                assert asyncio.get_running_loop().time() < deadline, "never leased another"
                await asyncio.sleep(0.1)
            assert ids.next() > before
    finally:
        await _forget(redis, settings)


async def test_a_process_started_while_redis_is_down_leases_once_it_is_up(tmp_path: Path) -> None:
    server = OwnRedis(tmp_path / "redis")  # not started yet
    client = Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    settings = replace(Settings(), node_id=None, node_lease_ttl_seconds=1.5, ingest_key_prefix="lp")
    try:
        async with leased_ids(client, settings) as ids:
            assert ids.node_id is None
            with pytest.raises(ApiError):
                ids.next()
            assert ids.take(0) == []  # events with their own ids need none
            server.start()
            deadline = asyncio.get_running_loop().time() + 10
            while ids.node_id is None:
                assert asyncio.get_running_loop().time() < deadline, "never leased"
                await asyncio.sleep(0.1)
            assert ids.take(3)
    finally:
        await client.aclose()
        server.stop()
