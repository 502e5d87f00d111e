"""Event ids: 53-bit, time-ordered, unique per process (safe as JSON numbers)."""

from __future__ import annotations

import threading
import time

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
NODE_BITS = 5
SEQUENCE_BITS = 7
MAX_ID = (1 << 53) - 1


class EventIds:
    """41 bits of milliseconds since EPOCH_MS, 5 bits of node id, 7 bits of sequence."""

    def __init__(self, node_id: int) -> None:
        if not 0 <= node_id < (1 << NODE_BITS):
            raise ValueError(f"node id must be in [0, {1 << NODE_BITS})")
        self._node = node_id
        self._lock = threading.Lock()
        self._last_ms = 0
        self._sequence = 0

    def take(self, count: int) -> list[int]:
        """count new ids at once, ascending, each greater than every id returned before."""
        per_ms = 1 << SEQUENCE_BITS
        ids: list[int] = []
        with self._lock:
            now = max(int(time.time() * 1000) - EPOCH_MS, self._last_ms)
            sequence = self._sequence + 1 if now == self._last_ms else 0
            while len(ids) < count:
                if sequence == per_ms:
                    now, sequence = now + 1, 0  # this millisecond is used up: borrow the next
                run = min(per_ms - sequence, count - len(ids))
                base = (now << (NODE_BITS + SEQUENCE_BITS)) | (self._node << SEQUENCE_BITS)
                ids.extend(range(base + sequence, base + sequence + run))
                sequence += run
            if ids:
                self._last_ms, self._sequence = now, sequence - 1
        return ids

    def next(self) -> int:
        """A new id, greater than every id this instance returned before."""
        with self._lock:
            now = max(int(time.time() * 1000) - EPOCH_MS, self._last_ms)
            if now == self._last_ms:
                self._sequence = (self._sequence + 1) & ((1 << SEQUENCE_BITS) - 1)
                if self._sequence == 0:
                    now += 1  # sequence exhausted in this millisecond: borrow the next one
            else:
                self._sequence = 0
            self._last_ms = now
            return (
                (now << (NODE_BITS + SEQUENCE_BITS))
                | (self._node << SEQUENCE_BITS)
                | self._sequence
            )
