"""What a best-effort Redis user (snapshot cache, rate limiter) does when Redis fails: skip it
for a moment instead of paying its timeout on every request, and warn at most once a minute."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

_WARN_EVERY_SECONDS = 60.0


class Outage:
    """Remembers a recent failure of an optional store."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        pause_seconds: float,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self._log = logger
        self._on_failure = on_failure  # told of every failure (a metric counts them)
        self._what = what
        self._pause = pause_seconds
        self._paused_until = 0.0
        self._warned_at = -_WARN_EVERY_SECONDS
        self._answered_at = -pause_seconds

    def paused(self) -> bool:
        """True while the store is being skipped after a failure."""
        return time.monotonic() < self._paused_until

    def answered(self) -> None:
        """Note that the store answered (a timeout soon after is this process's load)."""
        self._answered_at = time.monotonic()

    def failed(self, exc: BaseException) -> None:
        """Skip the store for the pause; warn unless a warning went out in the last minute.

        A timeout of our own (asyncio's) within a pause of the store's last answer is not an
        outage: the process is too busy to read the answer in time, and skipping the store then
        would send every request to the slower path at once."""
        if self._on_failure is not None:
            self._on_failure()
        now = time.monotonic()
        if type(exc) is TimeoutError and now - self._answered_at < self._pause:
            return
        self._paused_until = now + self._pause
        if now - self._warned_at >= _WARN_EVERY_SECONDS:
            self._warned_at = now
            self._log.warning("%s: %s: %s", self._what, type(exc).__name__, exc)
