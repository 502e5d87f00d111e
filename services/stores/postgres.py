"""PostgreSQL connection pool (asyncpg)."""

from __future__ import annotations

import asyncpg

from services.telemetry import measure


async def create_pool(url: str, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """Open a pool on the database named by url."""
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        command_timeout=60,
        init=measure.watch_postgres,  # statement latency and errors by kind
    )
    assert pool is not None
    return pool
