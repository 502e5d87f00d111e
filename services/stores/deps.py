"""The stores and shared objects a service process hands to its servicers."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis

from services.config import Settings
from services.money import FxTable
from services.stores.clickhouse import ClickHouse
from services.stores.postgres import create_pool
from services.stores.redisclient import redis_of


@dataclass
class Deps:
    """Open connections to every store, plus settings."""

    settings: Settings
    pg: asyncpg.Pool
    ch: ClickHouse
    redis: Redis
    fx: FxTable

    @classmethod
    async def open(cls, settings: Settings) -> Deps:
        """Connect to PostgreSQL, ClickHouse and Redis as configured."""
        pg = await create_pool(settings.database_url)
        return cls(
            settings=settings,
            pg=pg,
            ch=ClickHouse.from_settings(settings),
            redis=redis_of(settings),
            fx=FxTable(pg),
        )

    async def close(self) -> None:
        """Close every connection."""
        await self.pg.close()
        self.ch.close()
        await self.redis.aclose()
