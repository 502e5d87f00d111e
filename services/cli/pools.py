"""The PostgreSQL pool a CLI command runs on, opened for the command and closed after it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from services import config
from services.stores.postgres import create_pool

T = TypeVar("T")


async def with_pool(fn: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    """fn's result on a small pool on DATABASE_URL."""
    pool = await create_pool(config.load().database_url, max_size=2)
    try:
        return await fn(pool)
    finally:
        await pool.close()
