"""Start-up check that Redis keeps what ingestion acknowledges (AOF with a bounded fsync)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.config import Settings

log = logging.getLogger("linkpulse.live.durability")

MODES = ("refuse", "warn", "off")
# Seconds between checks while Redis does not answer at start.
RECHECK_SECONDS = 2.0


class NonDurableRedis(RuntimeError):
    """Redis could lose acknowledged events and INGEST_REQUIRE_DURABLE_REDIS=refuse."""


@dataclass(frozen=True)
class Persistence:
    """What Redis says about its persistence; None where it would not say (CONFIG forbidden)."""

    appendonly: str | None
    appendfsync: str | None

    @property
    def known(self) -> bool:
        """Whether Redis answered CONFIG GET."""
        return self.appendonly is not None

    @property
    def durable(self) -> bool:
        """AOF on and fsynced at least every second."""
        return self.appendonly == "yes" and self.appendfsync in ("always", "everysec")

    def describe(self) -> str:
        """One phrase for the log: the settings and what a Redis crash loses under them."""
        if not self.known:
            return "Redis refused CONFIG GET, so its persistence is unknown"
        if self.appendonly != "yes":
            return (
                "Redis runs without AOF (appendonly no): a Redis crash or restart loses every"
                " accepted event not yet in ClickHouse and every dedup marker"
            )
        if self.appendfsync == "always":
            return "Redis AOF with appendfsync always: nothing acknowledged is lost"
        if self.appendfsync == "everysec":
            return (
                "Redis AOF with appendfsync everysec: a crash of the Redis host may lose about"
                " the last second of acknowledged events"
            )
        return (
            f"Redis AOF with appendfsync {self.appendfsync}: the OS decides when the AOF reaches"
            " disk, so a crash of the Redis host may lose about 30 s of acknowledged events"
        )


def _text(value: object) -> str | None:
    if value is None:
        return None
    return (value.decode() if isinstance(value, bytes) else str(value)).lower()


async def read_persistence(redis: Redis) -> Persistence:
    """Redis's appendonly and appendfsync (None when CONFIG is forbidden or unknown)."""
    try:
        answer = await redis.config_get("append*")
    except ResponseError:  # managed Redis, ACLs: CONFIG is not for us
        return Persistence(None, None)
    values = {_text(k): _text(v) for k, v in answer.items()}
    return Persistence(values.get("appendonly"), values.get("appendfsync"))


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
