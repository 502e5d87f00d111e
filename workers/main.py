"""The arq worker: its settings, start-up (stores in ctx) and the jobs it runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import replace
from typing import Any

from arq import cron, func
from arq.connections import RedisSettings
from arq.worker import Worker, create_worker

from services.config import Settings
from services.stores import redisclient
from services.stores.deps import Deps
from workers import backoff
from workers.exports import (
    MAX_TRIES,
    purge_expired_exports,
    resume_stalled_jobs,
    run_batch,
    run_export,
)
from workers.maintenance import purge_expired_sessions
from workers.rollups import RollupSettings, refresh_daily_aggregates

# Base of the queue names tests make for themselves; the worker's queue is settings.queue_name.
QUEUE = "linkpulse:queue"
# Batch items are route-sized queries: a batch that runs this long has gone wrong.
BATCH_TIMEOUT_SECONDS = 600
# First wait before starting a failed worker again; a run this long (or the backoff cap,
# if longer) counts as healthy and resets the backoff.
FIRST_BACKOFF_SECONDS = 0.5
HEALTHY_RUN_SECONDS = 30.0
# How long closing a failed run may take (its jobs are cancelled; Redis may be down).
CLOSE_SECONDS = 10.0

log = logging.getLogger("linkpulse.worker")


def worker_settings(settings: Settings) -> dict[str, Any]:
    """arq settings for the deployment's queue in settings.arq_url (ARQ_REDIS_URL, else REDIS_URL:
    arq needs a plain Redis, not a Redis Cluster), stores opened into ctx."""

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
        # arq reads `rediss://` but not the TLS options of the URL's query: they are passed on.
        "redis_settings": replace(
            RedisSettings.from_dsn(settings.arq_url),
            **redisclient.tls_options(settings.arq_url),
        ),
        "queue_name": settings.queue_name,
        "functions": [
            purge_expired_sessions,
            refresh_daily_aggregates,
            func(run_export, timeout=settings.export_timeout_seconds, max_tries=MAX_TRIES),
            func(run_batch, timeout=BATCH_TIMEOUT_SECONDS, max_tries=MAX_TRIES),
        ],
        "cron_jobs": [
            *(cron_jobs if settings.worker_cron else []),
            # Not optional: a killed worker's exports and batches resume through it.
            cron(
                resume_stalled_jobs,
                second={0, 10, 20, 30, 40, 50},
                run_at_startup=True,
                max_tries=1,
            ),
        ],
        "on_startup": startup,
        "on_shutdown": shutdown,
        "handle_signals": True,
    }


async def _close(worker: Worker) -> None:
    """Cancel a run's jobs and close its stores and pool, whatever state Redis is in."""
    for task in worker.tasks.values():
        task.cancel()
    if worker.tasks:
        await asyncio.wait(worker.tasks.values(), timeout=CLOSE_SECONDS)
    if "deps" in worker.ctx:
        with contextlib.suppress(Exception):
            await worker.ctx["deps"].close()
    if worker._pool is not None:  # noqa: SLF001 - arq exposes no other way to ask
        with contextlib.suppress(Exception):
            await asyncio.wait_for(worker.pool.delete(worker.health_check_key), CLOSE_SECONDS)
        with contextlib.suppress(Exception):
            await worker.pool.close(close_connection_pool=True)


async def serve(settings: Settings) -> None:
    """Run the worker until SIGTERM or SIGINT, starting it again with capped exponential backoff
    whenever it fails (Redis, PostgreSQL or ClickHouse down)."""
    config = worker_settings(settings)
    # One connection attempt per run: the backoff here paces the retries, not arq's own.
    config["redis_settings"] = replace(config["redis_settings"], conn_retries=0)
    config["handle_signals"] = False
    cap = max(FIRST_BACKOFF_SECONDS, settings.worker_backoff_max_ms / 1000)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    running: list[asyncio.Task[None]] = []

    def on_signal(sig: signal.Signals) -> None:
        log.info("worker stopping on %s", sig.name)
        stop.set()
        for task in running:
            task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    attempt = 0
    while not stop.is_set():
        worker = create_worker(config)
        started = loop.time()
        run = asyncio.create_task(worker.main())
        running[:] = [run]
        failure: BaseException | None = None
        try:
            await run
        except asyncio.CancelledError:
            if not stop.is_set():
                raise
        except Exception as exc:  # noqa: BLE001 - every failure is retried
            failure = exc
        finally:
            running.clear()
            await _close(worker)
        if stop.is_set() or failure is None:
            return
        attempt = 1 if loop.time() - started >= max(HEALTHY_RUN_SECONDS, cap) else attempt + 1
        wait = backoff.delay(attempt, FIRST_BACKOFF_SECONDS, cap)
        log.warning(
            "worker failed (%s: %s); starting again in %.1fs (attempt %d)",
            type(failure).__name__,
            failure,
            wait,
            attempt,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)


def run_worker(settings: Settings) -> None:
    """Run the worker in the foreground until SIGTERM, riding out store outages."""
    asyncio.run(serve(settings))
