"""Start-up check that Redis keeps what ingestion acknowledges (AOF with a bounded fsync)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.config import Settings
from services.stores.redis_persistence import Persistence, read_persistence

log = logging.getLogger("linkpulse.live.durability")

MODES = ("refuse", "warn", "off")
# Seconds between checks while Redis does not answer at start.
RECHECK_SECONDS = 2.0


class NonDurableRedis(RuntimeError):
    """Redis could lose acknowledged events and INGEST_REQUIRE_DURABLE_REDIS=refuse."""


def judge(persistence: Persistence, mode: str) -> None:
    """Log the verdict on persistence under mode; raise NonDurableRedis when mode refuses it."""
    if mode == "off":
        return
    what = persistence.describe()
    if persistence.durable and persistence.appendfsync == "always":
        log.info("ingestion durability: %s", what)
    elif persistence.durable:
        log.warning("ingestion durability: %s", what)
    elif not persistence.known:
        log.warning("INGEST DURABILITY NOT VERIFIED: %s; make sure it runs with AOF", what)
    elif mode == "refuse":
        log.error(
            "refusing to accept events: %s. Run Redis with --appendonly yes --appendfsync always"
            " (or everysec), or set INGEST_REQUIRE_DURABLE_REDIS=warn to accept the risk",
            what,
        )
        raise NonDurableRedis(what)
    else:
        log.warning("ACKNOWLEDGED EVENTS MAY BE LOST: %s (INGEST_REQUIRE_DURABLE_REDIS=warn)", what)


async def check(redis: Redis, settings: Settings) -> asyncio.Task[None] | None:
    """Check Redis's persistence once at start; when Redis does not answer yet, a task checks
    again until it does (and stops the process on a refusal)."""
    mode = settings.ingest_require_durable_redis
    if mode not in MODES:
        raise ValueError(f"INGEST_REQUIRE_DURABLE_REDIS must be one of {', '.join(MODES)}")
    if mode == "off":
        return None
    try:
        judge(await read_persistence(redis), mode)
        return None
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        log.warning("cannot check Redis persistence yet (%s); checking again when it answers", exc)
    return asyncio.create_task(_check_later(redis, mode))


async def _check_later(redis: Redis, mode: str) -> None:
    while True:
        await asyncio.sleep(RECHECK_SECONDS)
        try:
            persistence = await read_persistence(redis)
        except (RedisError, OSError):
            continue
        try:
            judge(persistence, mode)
        except NonDurableRedis:
            os.kill(os.getpid(), signal.SIGTERM)  # a graceful stop; a restart then refuses
        return
