"""Capped exponential backoff: its waits, and retries that give up only once stopped."""

from __future__ import annotations

import asyncio
import logging

import pytest

from workers import backoff

log = logging.getLogger("test.backoff")


def test_waits_double_from_the_first_up_to_the_cap() -> None:
    assert [backoff.delay(n, 0.05, 0.3) for n in range(1, 6)] == [0.05, 0.1, 0.2, 0.3, 0.3]
    assert [backoff.delay(n, 2.0, 60.0) for n in (1, 2, 5, 6, 9)] == [2.0, 4.0, 32.0, 60.0, 60.0]


async def test_failures_are_retried_until_the_call_succeeds() -> None:
    calls = 0
    async for attempt in backoff.until_stopped(
        "flaky", asyncio.Event(), first=0.001, cap=0.002, log=log
    ):
        with attempt:
            calls += 1
            if calls < 4:
                raise ConnectionError("down")
    assert calls == 4


async def test_a_failure_once_stopped_is_raised() -> None:
    stop = asyncio.Event()
    calls = 0
    with pytest.raises(ConnectionError):
        async for attempt in backoff.until_stopped("down", stop, first=0.001, cap=0.001, log=log):
            with attempt:
                calls += 1
                if calls == 3:
                    stop.set()
                raise ConnectionError("down")
    assert calls == 3
