"""A weighted pool picked from by one uniform draw (bisect over cumulative weights)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from itertools import accumulate
from typing import Generic, TypeVar

T = TypeVar("T")


class Weighted(Generic[T]):
    """Items with relative weights; `pick(u)` maps a uniform u in [0, 1) to an item."""

    __slots__ = ("items", "cum", "total")

    def __init__(self, pairs: Iterable[tuple[T, float]]) -> None:
        kept = [(item, float(weight)) for item, weight in pairs if weight > 0]
        if not kept:
            raise ValueError("a weighted pool needs at least one positive weight")
        self.items: tuple[T, ...] = tuple(item for item, _ in kept)
        self.cum: list[float] = list(accumulate(weight for _, weight in kept))
        self.total: float = self.cum[-1]

    def pick(self, u: float) -> T:
        """The item whose share of the total weight covers u (uniform in [0, 1))."""
        i = bisect_right(self.cum, u * self.total)
        return self.items[i if i < len(self.items) else -1]

    def __len__(self) -> int:
        return len(self.items)
