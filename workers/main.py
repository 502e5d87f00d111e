"""The arq worker: its settings, start-up (stores in ctx) and the jobs it runs."""

from __future__ import annotations

from typing import Any

from arq import cron, func
from arq.connections import RedisSettings
from arq.worker import run_worker as arq_run_worker

from services.config import Settings
from services.stores.deps import Deps
from workers.exports import (
    MAX_TRIES,
    purge_expired_exports,
    resume_stalled_exports,
    run_batch,
    run_export,
)
from workers.maintenance import purge_expired_sessions
from workers.rollups import RollupSettings, refresh_daily_aggregates

# Base of the queue names tests make for themselves; the worker's queue is settings.queue_name.
QUEUE = "linkpulse:queue"
# Batch items are route-sized queries: a batch that runs this long has gone wrong.
BATCH_TIMEOUT_SECONDS = 600


def worker_settings(settings: Settings) -> dict[str, Any]:
    """arq settings for the deployment's queue in settings.redis_url, stores opened into ctx."""

    rollups = RollupSettings.from_settings(settings)

    async def startup(ctx: dict[str, Any]) -> None:
        deps = await Deps.open(settings)
        ctx.update(
            deps=deps, pg=deps.pg, ch=deps.ch, redis_store=deps.redis, rollup_settings=rollups
        )

    async def shutdown(ctx: dict[str, Any]) -> None:
        await ctx["deps"].close()

    cron_jobs = [
        cron(purge_expired_sessions, minute={7}, run_at_startup=False),
        # The fallback's daily aggregates: at start-up (a first backfill), then every few
        # minutes; a run still going when the next is due makes that one skip its workspaces.
        cron(
            refresh_daily_aggregates,
            minute=rollups.minutes(),
            run_at_startup=True,
            timeout=rollups.timeout_seconds,
            max_tries=1,
        ),
        cron(purge_expired_exports, minute=set(range(0, 60, 5)), run_at_startup=True),
    ]
    return {
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "queue_name": settings.queue_name,
        "functions": [
            purge_expired_sessions,
            refresh_daily_aggregates,
            func(run_export, timeout=settings.export_timeout_seconds, max_tries=MAX_TRIES),
            func(run_batch, timeout=BATCH_TIMEOUT_SECONDS, max_tries=MAX_TRIES),
        ],
        "cron_jobs": [
            *(cron_jobs if settings.worker_cron else []),
            # Not optional: a killed worker's export resumes through it.
            cron(
                resume_stalled_exports,
                second={0, 10, 20, 30, 40, 50},
                run_at_startup=True,
                max_tries=1,
            ),
        ],
        "on_startup": startup,
        "on_shutdown": shutdown,
        "handle_signals": True,
    }


def run_worker(settings: Settings) -> None:
    """Run the worker in the foreground until SIGTERM."""
    arq_run_worker(type("WorkerSettings", (), worker_settings(settings)))
