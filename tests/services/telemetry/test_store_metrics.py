"""Store metrics on the real servers: statement latency by kind, failures by kind and reason."""

from __future__ import annotations

import asyncpg
import pytest
from clickhouse_driver import errors as ch_errors

from services.errors import StoreUnavailable
from services.stores.clickhouse import ClickHouse
from services.stores.postgres import create_pool
from tests.ports import free_port
from tests.services.telemetry.test_measure import value


async def test_postgres_statements_are_timed_and_failures_counted(system) -> None:
    pool = await create_pool(system.settings.database_url, max_size=1)
    try:
        selects = value("linkpulse_postgres_query_duration_seconds_count", kind="select")
        inserts = value("linkpulse_postgres_query_duration_seconds_count", kind="insert")
        failed = value("linkpulse_postgres_errors_total", kind="select")
        assert await pool.fetchval("SELECT 1 + $1::int", 1) == 2
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("CREATE TEMPORARY TABLE metrics_probe (a int) ON COMMIT DROP")
            await conn.execute("INSERT INTO metrics_probe VALUES ($1)", 1)
        with pytest.raises(asyncpg.UndefinedColumnError):
            await pool.fetch("SELECT no_such_column FROM pg_class")
        # The query logger is told on the next turn of the loop.
        await pool.fetchval("SELECT 1")
        assert value("linkpulse_postgres_query_duration_seconds_count", kind="select") >= (
            selects + 3
        )
        assert value("linkpulse_postgres_query_duration_seconds_count", kind="insert") == (
            inserts + 1
        )
        assert value("linkpulse_postgres_errors_total", kind="select") == failed + 1
    finally:
        await pool.close()


async def test_clickhouse_statements_are_timed_and_failures_counted_by_reason(system) -> None:
    ch = ClickHouse.from_url(system.settings.clickhouse_url, pool_size=1)
    down = ClickHouse.from_url(f"clickhouse://default@127.0.0.1:{free_port()}/default")
    try:
        count = value("linkpulse_clickhouse_query_duration_seconds_count", kind="select")
        server = value("linkpulse_clickhouse_errors_total", kind="select", reason="server")
        gone = value("linkpulse_clickhouse_errors_total", kind="select", reason="unavailable")
        assert await ch.fetch("SELECT 1") == [(1,)]
        with pytest.raises(ch_errors.ServerException):
            await ch.fetch("SELECT no_such_column")
        with pytest.raises(StoreUnavailable):
            await down.fetch("SELECT 1")
        assert value("linkpulse_clickhouse_query_duration_seconds_count", kind="select") == (
            count + 3
        )
        assert value("linkpulse_clickhouse_errors_total", kind="select", reason="server") == (
            server + 1
        )
        assert value("linkpulse_clickhouse_errors_total", kind="select", reason="unavailable") == (
            gone + 1
        )
    finally:
        ch.close()
        down.close()
