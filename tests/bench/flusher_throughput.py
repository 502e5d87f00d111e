"""Flusher throughput on one Redis: a backlog of clicks over many workspaces drained into
ClickHouse by one in-process flusher (events per second), with the settings in the environment
(e.g. INGEST_PARTITIONS). Runs against any checkout: `python -m tests.bench.flusher_throughput`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime

from redis.asyncio import Redis

from services.config import Settings
from services.live.accepted import Accepted, accepted_one
from services.live.stream import EventStream
from services.live.tables import CLICK_COLUMNS
from services.stores.clickhouse import ClickHouse
from services.stores.migrate import migrate
from tests.databases import drop_databases
from workers.flusher import Flusher

WORKSPACES = 64
PER_REQUEST = 500


def _batch(workspace_id: int, first_id: int, n: int) -> Accepted:
    joined = Accepted("click")
    for event_id in range(first_id, first_id + n):
        row = dict.fromkeys(CLICK_COLUMNS, "")
        row.update(
            event_id=event_id, workspace_id=workspace_id, link_id=event_id % 50 + 1,
            timestamp=datetime(2026, 6, 1, 10, tzinfo=UTC), rule_id=0, condition_id=0,
            is_bot=0, country="DE", device="mobile", visitor_id=f"v{event_id % 997}",
        )  # fmt: skip
        joined.extend(accepted_one("click", row, claimed=True))
    return joined


async def main(events: int) -> None:
    """Enqueue events, then time one flusher draining them."""
    tag = f"flushbench_{os.getpid()}"
    os.environ.update(
        INGEST_STREAM=f"lp:{tag}:ingest", INGEST_KEY_PREFIX=f"lp:{tag}",
        REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:5432/{tag}",
        CLICKHOUSE_URL=f"clickhouse://default@127.0.0.1:9000/{tag}",
    )  # fmt: skip
    settings = Settings()
    await drop_databases(settings.database_url, settings.clickhouse_url)
    await migrate(settings.database_url, settings.clickhouse_url)
    redis = Redis.from_url(settings.redis_url)
    ch = ClickHouse.from_url(settings.clickhouse_url, pool_size=4)
    try:
        stream = EventStream(redis, settings, lambda *_: None)
        sent = 0
        while sent < events:
            workspace = 1 + (sent // PER_REQUEST) % WORKSPACES
            await stream.enqueue(workspace, _batch(workspace, 1 + sent, PER_REQUEST))
            sent += PER_REQUEST
        flusher = Flusher(redis, ch, settings, consumer="bench")
        started = time.monotonic()
        running = asyncio.create_task(flusher.run())
        while flusher.flushed < sent:  # noqa: ASYNC110 - the flusher has no event to wait on
            await asyncio.sleep(0.01)
        seconds = time.monotonic() - started
        flusher.stop.set()
        await running
        stored = (await ch.fetch("SELECT count() FROM clicks"))[0][0]
        partitions = os.environ.get("INGEST_PARTITIONS", "(none)")
        print(
            f"partitions={partitions} events={sent} stored={stored} seconds={seconds:.2f}"
            f" events/s={sent / seconds:,.0f}"
        )
    finally:
        keys = [k async for k in redis.scan_iter(match=f"lp:{tag}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        ch.close()
        await drop_databases(settings.database_url, settings.clickhouse_url)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))
