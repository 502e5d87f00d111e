"""Fixtures of the live feed tests: a real Redis database and a key prefix of this session."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest_asyncio
from redis.asyncio import Redis

REDIS_URL = os.environ.get("LINKPULSE_TEST_LIVE_REDIS_URL", "redis://127.0.0.1:6379/13")
PREFIX = f"lptest{os.getpid()}:live"


@asynccontextmanager
async def session_redis() -> AsyncIterator[Redis]:
    """Client on the live tests' Redis db; this session's keys are removed afterwards."""
    client = Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{PREFIX}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest_asyncio.fixture
async def redis() -> AsyncIterator[Redis]:
    """Client on the live tests' Redis db; this session's keys are removed afterwards."""
    async with session_redis() as client:
        yield client
