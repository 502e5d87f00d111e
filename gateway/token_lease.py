"""Rate-limit tokens a gateway leased from a busy credential's Redis bucket, spent locally.

A credential read often here (at least `busy` reads within a lease's life) takes a few tokens
of its bucket in one call, as many as it was read in the last lease life (capped), and the
snapshot reads answered from memory (gateway.hot_snapshots) spend them one by one. A lease
lives a moment only; the tokens it did not spend are lost (the bucket has counted them), so a
gateway never grants more than the shared bucket allows, across any number of copies. A quiet
credential wants a lease of one: today's one call per read.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from services.auth.ratelimit import Decision

_MAX_CREDENTIALS = 10_000


@dataclass
class _Lease:
    tokens: int  # left to spend here
    expires: float  # monotonic
    decision: Decision  # the bucket's answer when the last tokens were taken
    full_at: float  # monotonic, when the bucket will be full again (by that answer)


@dataclass
class _Reads:
    started: float  # monotonic start of the current window
    current: int
    previous: int


class TokenLeases:
    """Per credential: its recent read rate, and the tokens it holds until they expire."""

    def __init__(
        self,
        life_seconds: float,
        max_tokens: int,
        busy: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._life = life_seconds
        self._max = max_tokens
        self._busy = max(2, busy)
        self._clock = clock
        self._leases: dict[str, _Lease] = {}
        self._reads: dict[str, _Reads] = {}

    @property
    def enabled(self) -> bool:
        """False when no lease ever holds more than the one token a read spends."""
        return self._life > 0 and self._max > 1

    def note(self, credential: str) -> None:
        """Count a read of credential (its rate sizes its next lease)."""
        if not self.enabled:
            return
        now = self._clock()
        reads = self._reads.get(credential)
        if reads is None:
            if len(self._reads) >= _MAX_CREDENTIALS:
                self._reads.clear()
            self._reads[credential] = _Reads(now, 1, 0)
            return
        if now - reads.started >= self._life:
            recent = now - reads.started < 2 * self._life
            reads.previous = reads.current if recent else 0
            reads.started = now
            reads.current = 0
        reads.current += 1

    def wanted(self, credential: str) -> int:
        """Tokens to lease at the next read from the bucket: 1 unless the credential is busy."""
        reads = self._reads.get(credential) if self.enabled else None
        if reads is None:
            return 1
        recent = max(reads.current, reads.previous)
        return 1 if recent < self._busy else min(self._max, recent)

    def keep(self, credential: str, taken: int, decision: Decision) -> Decision:
        """Hold the tokens a read took beyond its own; the read's decision counting them as the
        credential's (Remaining: the bucket's tokens plus those held here)."""
        extra = taken - 1
        if extra <= 0 or not decision.allowed:
            return decision
        now = self._clock()
        lease = self._leases.get(credential)
        if lease is not None and lease.expires > now:
            extra += lease.tokens  # concurrent reads' leases add up; none is granted twice
        if len(self._leases) >= _MAX_CREDENTIALS:
            self._leases = {k: v for k, v in self._leases.items() if v.expires > now}
            if len(self._leases) >= _MAX_CREDENTIALS:
                self._leases.clear()
        full_at = now + decision.reset_seconds
        self._leases[credential] = _Lease(extra, now + self._life, decision, full_at)
        return replace(decision, remaining=decision.remaining + extra)

    def spend(self, credential: str) -> Decision | None:
        """Spend a held token of credential: the decision to answer with; None when it holds
        none (the read goes to the shared bucket, which alone refuses)."""
        lease = self._leases.get(credential)
        if lease is None:
            return None
        now = self._clock()
        if lease.tokens <= 0 or lease.expires <= now:
            del self._leases[credential]
            return None
        lease.tokens -= 1
        reset = max(0, math.ceil(lease.full_at - now))
        return replace(
            lease.decision,
            remaining=lease.decision.remaining + lease.tokens,
            reset_seconds=reset,
        )
