"""Outage: a failing store is skipped for a moment; this process's own slowness is not a failure."""

from __future__ import annotations

import logging

from redis.exceptions import ConnectionError as RedisConnectionError

from services.stores.outage import Outage

LOG = logging.getLogger("test.outage")


def test_a_failure_pauses_the_store() -> None:
    outage = Outage(LOG, "store unavailable", pause_seconds=30)
    assert not outage.paused()
    outage.failed(RedisConnectionError("refused"))
    assert outage.paused()


def test_a_timeout_without_a_recent_answer_is_an_outage() -> None:
    outage = Outage(LOG, "store unavailable", pause_seconds=30)
    outage.failed(TimeoutError())
    assert outage.paused()


def test_a_timeout_just_after_an_answer_is_load_not_an_outage() -> None:
    outage = Outage(LOG, "store unavailable", pause_seconds=30)
    outage.answered()
    outage.failed(TimeoutError())
    assert not outage.paused()
    # Anything else still is.
    outage.failed(RedisConnectionError("reset"))
    assert outage.paused()
