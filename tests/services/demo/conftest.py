"""Fixtures of the demo tests: a throwaway PostgreSQL + ClickHouse database pair, migrated."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from services.config import Settings
from services.devstack import clickhouse_server as devstack_clickhouse
from services.stores.clickhouse import ClickHouse
from services.stores.migrate import migrate
from tests.databases import drop_databases


@dataclass
class DemoStores:
    """Pool and ClickHouse facade on databases that exist only for these tests."""

    pg: asyncpg.Pool
    ch: ClickHouse
    pg_url: str
    ch_url: str


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="module")
async def demo_stores(settings: Settings) -> AsyncIterator[DemoStores]:
    """Fresh databases named after this process on the test servers, dropped afterwards."""
    devstack_clickhouse.ensure(settings)
    name = f"lp_demo_test_{os.getpid()}"
    pg_url = _with_database(settings.database_url, name)
    ch_url = _with_database(settings.clickhouse_url, name)
    await drop_databases(pg_url, ch_url)
    await migrate(pg_url, ch_url)
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=4)
    assert pool is not None
    ch = ClickHouse.from_url(ch_url, pool_size=2)
    try:
        yield DemoStores(pool, ch, pg_url, ch_url)
    finally:
        ch.close()
        await pool.close()
        await drop_databases(pg_url, ch_url)
