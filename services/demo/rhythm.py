"""When the demo's clicks happen: hour slots over the range, each with its share of the clicks."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from random import Random
from zoneinfo import ZoneInfo

# Relative traffic per local hour of day: quiet nights, a morning ramp, a long afternoon.
HOUR_WEIGHTS = (
    0.22, 0.15, 0.11, 0.09, 0.10, 0.16, 0.30, 0.55, 0.80, 0.95, 1.00, 1.02,
    1.00, 1.00, 1.02, 0.98, 0.95, 0.92, 0.90, 0.92, 0.88, 0.75, 0.55, 0.36,
)  # fmt: skip
# Monday first.
WEEKDAY_WEIGHTS = (1.00, 1.06, 1.08, 1.04, 0.94, 0.64, 0.58)
# Traffic at the end of the range relative to its start.
GROWTH = 0.45
DAY_NOISE = 0.08
HOUR_NOISE = 0.12


@dataclass(frozen=True)
class Spike:
    """A burst of extra traffic: fast rise, slower decay, `height` times the usual at the peak."""

    at_day: float
    height: float
    rise_days: float = 0.6
    decay_days: float = 2.5

    def factor(self, day: float) -> float:
        """Multiplier of the usual traffic `day` days after the range start."""
        width = self.rise_days if day < self.at_day else self.decay_days
        return 1.0 + self.height * math.exp(-0.5 * ((day - self.at_day) / width) ** 2)


@dataclass(frozen=True)
class Slot:
    """Clicks to generate in [start, end) (epoch seconds); `day` is days since the range start."""

    start: int
    end: int
    day: float
    clicks: int


def apportion(weights: list[float], total: int) -> list[int]:
    """Integers proportional to weights summing exactly to total (largest remainder)."""
    whole = sum(weights)
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    exact = [w * total / whole for w in weights]
    counts = [int(x) for x in exact]
    short = total - sum(counts)
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[:short]:
        counts[i] += 1
    return counts


def plan(
    start: int,
    end: int,
    tz: ZoneInfo,
    clicks: int,
    rng: Random,
    surge: Callable[[float], float],
) -> list[Slot]:
    """Hour slots covering [start, end) sharing `clicks` by local hour, weekday, trend and surge."""
    bounds = []
    hour = start - start % 3600
    while hour < end:
        lo, hi = max(hour, start), min(hour + 3600, end)
        if hi > lo:
            bounds.append((lo, hi))
        hour += 3600
    span = max(end - start, 1) / 86400
    day_noise: dict[date, float] = {}
    weights = []
    for lo, hi in bounds:
        local = datetime.fromtimestamp(lo, tz)
        today = local.date()
        if today not in day_noise:
            day_noise[today] = rng.lognormvariate(0.0, DAY_NOISE)
        day = (lo - start) / 86400
        weights.append(
            HOUR_WEIGHTS[local.hour]
            * WEEKDAY_WEIGHTS[local.weekday()]
            * (1.0 + GROWTH * day / span)
            * day_noise[today]
            * rng.lognormvariate(0.0, HOUR_NOISE)
            * surge(day)
            * (hi - lo)
            / 3600
        )
    counts = apportion(weights, clicks)
    return [
        Slot(lo, hi, (lo - start) / 86400, n) for (lo, hi), n in zip(bounds, counts, strict=True)
    ]
