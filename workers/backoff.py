"""Capped exponential backoff of the background processes: its waits and retries with them."""

from __future__ import annotations

import asyncio
import logging

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception


def delay(attempt: int, first: float, cap: float) -> float:
    """Seconds to wait after failed try number `attempt` (from 1): first, doubling, at most cap."""
    return float(min(first * 2 ** (attempt - 1), cap))


def until_stopped(
    what: str, stop: asyncio.Event, *, first: float, cap: float, log: logging.Logger
) -> AsyncRetrying:
    """Retries of any failure with delay()'s waits, each logged; once stop is set a failure is
    raised instead."""

    def wait(state: RetryCallState) -> float:
        return delay(state.attempt_number, first, cap)

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        seconds = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s failed (%s); retrying in %.2fs", what, error, seconds)

    return AsyncRetrying(
        # Exception only: cancellation is never retried.
        retry=retry_if_exception(lambda exc: isinstance(exc, Exception) and not stop.is_set()),
        wait=wait,
        before_sleep=log_retry,
        reraise=True,
    )
