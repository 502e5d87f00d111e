"""Dropping the throw-away PostgreSQL and ClickHouse databases that tests and the bench create."""

from __future__ import annotations

from urllib.parse import urlparse, urlunparse

import asyncpg

from services import config
from services.stores import cluster
from services.stores.clickhouse import ClickHouseTarget


def _on_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


async def drop_postgres_database(url: str) -> None:
    """Drop the PostgreSQL database url names, if it exists, closing its connections."""
    name = urlparse(url).path.lstrip("/")
    admin = await asyncpg.connect(_on_database(url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def drop_clickhouse_database(url: str, cluster_name: str | None = None) -> None:
    """Drop the ClickHouse database url names, if it exists; on a cluster (CLICKHOUSE_CLUSTER
    unless named) also that of its local tables, on every node."""
    if cluster_name is None:
        cluster_name = config.load().clickhouse_cluster
    await cluster.drop_databases(ClickHouseTarget.from_url(url, cluster_name))


async def drop_databases(pg_url: str, ch_url: str, cluster_name: str | None = None) -> None:
    """Drop the PostgreSQL and the ClickHouse database the two urls name."""
    await drop_postgres_database(pg_url)
    await drop_clickhouse_database(ch_url, cluster_name)
