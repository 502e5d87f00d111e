"""The arq worker rides out a Redis outage: it stays alive and runs the jobs queued after it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from arq.connections import RedisSettings, create_pool

from services.devstack import components, processes
from services.devstack.pidfiles import pid_alive
from tests.services.devstack.helpers import process_env
from tests.services.devstack.redis_server import OwnRedis

pytestmark = pytest.mark.skipif(not OwnRedis.available(), reason="redis-server is not installed")


async def test_worker_survives_a_redis_outage_and_runs_a_queued_job(system, tmp_path: Path):
    redis = OwnRedis(tmp_path / "redis", aof=False)
    redis.start()
    settings = replace(system.settings, redis_url=redis.url, run_dir=tmp_path / "run")
    base = components.spec(settings, "worker")
    spec = replace(
        base,
        env=process_env(settings, WORKER_CRON="off", WORKER_BACKOFF_MAX_MS="1000"),
    )
    pid = processes.start(spec).pid
    assert pid is not None
    try:
        redis.stop()
        await asyncio.sleep(5)
        assert pid_alive(pid), spec.log_path.read_text()
        redis.start()
        pool = await create_pool(RedisSettings.from_dsn(redis.url))
        try:
            job = await pool.enqueue_job("purge_expired_sessions", _queue_name=settings.queue_name)
            assert job is not None
            assert isinstance(await job.result(timeout=30), int)
        finally:
            await pool.aclose()
        assert processes.running_pid(spec) == pid
        log = spec.log_path.read_text()
        assert "worker failed" in log and "starting again in" in log
        # One line per failed attempt, not arq's own connection retries.
        assert "redis connection error" not in log.lower()
    finally:
        processes.stop(spec)
        redis.stop()
