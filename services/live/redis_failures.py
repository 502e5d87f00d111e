"""Redis failures meaning "unreachable now", and their one translation into UNAVAILABLE."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis import exceptions as redis_errors

from services import errors

# Failures meaning "Redis cannot be reached now", for writes and reads alike.
REDIS_DOWN = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


@contextmanager
def reading_redis(what: str) -> Iterator[None]:
    """Raise UNAVAILABLE naming what (e.g. "the live feed") when Redis cannot be reached."""
    try:
        yield
    except REDIS_DOWN as exc:
        raise errors.unavailable(f"{what} is unavailable: Redis is unreachable ({exc})") from exc
