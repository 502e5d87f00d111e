"""Samples of one measurement and their percentiles."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Samples:
    """Wall-clock durations of one measurement, in milliseconds."""

    values: list[float] = field(default_factory=list)

    async def time(self, call: Callable[[], Awaitable[T]], keep: bool = True) -> T:
        """Await call(), recording its duration when keep."""
        began = time.perf_counter()
        result = await call()
        if keep:
            self.values.append((time.perf_counter() - began) * 1000)
        return result

    def percentile(self, p: int) -> float:
        """The p-th percentile (linear between the closest ranks); nan without samples."""
        if not self.values:
            return float("nan")
        if len(self.values) == 1:
            return self.values[0]
        return statistics.quantiles(self.values, n=100, method="inclusive")[p - 1]

    @property
    def p50(self) -> float:
        """Median."""
        return self.percentile(50)

    @property
    def p95(self) -> float:
        """95th percentile."""
        return self.percentile(95)

    @property
    def total_seconds(self) -> float:
        """Sum of the samples in seconds."""
        return sum(self.values) / 1000
