"""In-process single flight: concurrent callers of one key share one running computation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """At most one computation per key at a time; callers arriving meanwhile await its result."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[T]] = {}

    def running(self, key: str) -> bool:
        """True while a computation of key is in flight."""
        return key in self._running

    def start(self, key: str, compute: Callable[[], Awaitable[T]]) -> tuple[asyncio.Task[T], bool]:
        """The task computing key (started now if none runs) and whether this call started it."""
        task = self._running.get(key)
        if task is not None:
            return task, False
        task = asyncio.ensure_future(compute())
        self._running[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))
        return task, True

    async def run(self, key: str, compute: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """compute's result for key, shared with concurrent callers, and whether this caller led.

        A caller cancelled while waiting (its client went away) does not cancel the computation
        the others wait for."""
        task, leader = self.start(key, compute)
        return await asyncio.shield(task), leader

    async def aclose(self) -> None:
        """Cancel the computations still running (shutdown)."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _forget(self, key: str, done: asyncio.Task[T]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved: a failure is the callers' to see, not the loop's log
