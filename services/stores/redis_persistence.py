"""What a Redis server says about its persistence, and what a crash of it would lose."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ResponseError


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
