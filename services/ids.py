"""Event ids: 53-bit, time-ordered, unique per node id (safe as JSON numbers)."""

from __future__ import annotations

import threading
import time
from typing import Protocol

from services import errors

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
TIME_BITS = 40  # milliseconds since EPOCH_MS: until 2058
NODE_BITS = 8
SEQUENCE_BITS = 5
MAX_ID = (1 << 53) - 1
NODE_IDS = range(1 << NODE_BITS)
# Node ids no process leases: the demo loader's (services.demo.events.DEMO_NODE_ID).
RESERVED_NODE_IDS = frozenset({31})
# The layout before node ids were leased: 41 bits of milliseconds, 5 of node, 7 of sequence.
# An id of this layout minted at millisecond m is below (m + 1) << 12, and an id minted now at
# millisecond n is at least n << 13: greater whenever 2n > m, so every new id tops every old one.
LEGACY_LOW_BITS = 12


def now_ms() -> int:
    """Milliseconds since EPOCH_MS, the time field of ids minted now."""
    return int(time.time() * 1000) - EPOCH_MS


def id_ms(event_id: int) -> int:
    """The time field of an id (milliseconds since EPOCH_MS)."""
    return event_id >> (NODE_BITS + SEQUENCE_BITS)


class IdSource(Protocol):
    """What mints event ids for a service: blocks and single ids, ascending."""

    def take(self, count: int) -> list[int]:
        """count new ids at once, ascending, each greater than every id returned before."""
        ...

    def next(self) -> int:
        """A new id, greater than every id returned before."""
        ...


class EventIds:
    """40 bits of milliseconds since EPOCH_MS, 8 bits of node id, 5 bits of sequence.

    A millisecond whose sequence is used up borrows the next one, so ids may run ahead of the
    clock; after_ms makes every id's millisecond greater than it (a node id's previous holder
    used the milliseconds up to it) and ceiling_ms, when set, is the last millisecond this
    instance may use (its holder's reservation): past it, minting is refused."""

    def __init__(self, node_id: int, after_ms: int = -1, ceiling_ms: int | None = None) -> None:
        if node_id not in NODE_IDS:
            raise ValueError(f"node id must be in [0, {len(NODE_IDS)})")
        self._node = node_id
        self._lock = threading.Lock()
        self._last_ms = after_ms + 1
        self._sequence = -1  # the last sequence number used in _last_ms
        self.ceiling_ms = ceiling_ms

    @property
    def node_id(self) -> int:
        """The node id in every id of this instance."""
        return self._node

    @property
    def last_ms(self) -> int:
        """The highest millisecond an id of this instance may have used."""
        return self._last_ms

    def _refuse_past(self, ms: int) -> None:
        if self.ceiling_ms is not None and ms > self.ceiling_ms:
            raise errors.unavailable(
                "event ids of this process are reserved only up to now; events were not "
                "accepted: retry shortly"
            )

    def take(self, count: int) -> list[int]:
        """count new ids at once, ascending, each greater than every id returned before."""
        per_ms = 1 << SEQUENCE_BITS
        ids: list[int] = []
        with self._lock:
            now = max(now_ms(), self._last_ms)
            sequence = self._sequence + 1 if now == self._last_ms else 0
            while len(ids) < count:
                if sequence == per_ms:
                    now, sequence = now + 1, 0  # this millisecond is used up: borrow the next
                run = min(per_ms - sequence, count - len(ids))
                base = (now << (NODE_BITS + SEQUENCE_BITS)) | (self._node << SEQUENCE_BITS)
                ids.extend(range(base + sequence, base + sequence + run))
                sequence += run
            if ids:
                self._refuse_past(now)
                self._last_ms, self._sequence = now, sequence - 1
        return ids

    def next(self) -> int:
        """A new id, greater than every id this instance returned before."""
        with self._lock:
            now = max(now_ms(), self._last_ms)
            sequence = self._sequence + 1 if now == self._last_ms else 0
            if sequence == 1 << SEQUENCE_BITS:
                now, sequence = now + 1, 0  # sequence exhausted in this millisecond: borrow
            self._refuse_past(now)
            self._last_ms, self._sequence = now, sequence
            return (now << (NODE_BITS + SEQUENCE_BITS)) | (self._node << SEQUENCE_BITS) | sequence
