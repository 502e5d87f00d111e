"""In-process copies of fresh snapshot reads, kept a fraction of a second.

Kept are reads that spent nothing (the credential has no rate limit) and reads of a limited
credential that leased tokens of its bucket (gateway.token_lease): a copy of those answers only
while a leased token is left to spend, otherwise the read goes to Redis. A copy never outlives
the credential's memo (a revoked key is refused as soon as without it) nor the snapshot's TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

_MAX_ENTRIES = 10_000


class HotCopies(Generic[T]):
    """key -> value until a deadline on the monotonic clock; at most _MAX_ENTRIES kept."""

    def __init__(self, keep_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._keep = keep_seconds
        self._clock = clock
        self._entries: dict[str, tuple[float, T]] = {}

    @property
    def enabled(self) -> bool:
        """False when copies are kept for no time at all."""
        return self._keep > 0

    def get(self, key: str) -> T | None:
        """The value kept for key, if still valid."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    def known(self, key: str) -> bool:
        """True when a value was kept for key, valid or not (until dropped or crowded out)."""
        return key in self._entries

    def put(self, key: str, value: T, valid_seconds: float) -> None:
        """Keep value for the shorter of keep_seconds and valid_seconds."""
        keep = min(self._keep, valid_seconds)
        if keep <= 0:
            return
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (self._clock() + keep, value)

    def drop(self, key: str) -> None:
        """Forget key (its snapshot was just replaced here)."""
        self._entries.pop(key, None)
