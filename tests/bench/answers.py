"""Answers in one comparable form, and the check of the gateway's against PostgreSQL's.

An answer is a flat dict `"<row>.<metric>" -> number`: `totals.clicks`, `<bucket label>.leads`,
`<rank>:<key>.revenue`, `lead.count`. Unique visitors are a sketch in ClickHouse
(`uniqCombined(12)`), so they may differ by VISITOR_TOLERANCE; money by a cent of rounding; every
count must be exact.
"""

from __future__ import annotations

from typing import Any, Protocol

from tests.bench.routes import Breakdown, Funnel, Overview, Shape, Timeseries

Answer = dict[str, float]


def overview(by_kind: dict[str, Any]) -> Answer:
    """The overview answer from each kind's (events, visitors, revenue) of the window followed
    by the same three of the period before (kinds left out count zero)."""
    answer: Answer = {}
    for part, offset in (("totals", 0), ("previous", 3)):
        clicks = by_kind.get("clicks", (0,) * 6)
        answer[f"{part}.clicks"] = clicks[offset]
        answer[f"{part}.uniqueVisitors"] = clicks[offset + 1]
        answer[f"{part}.leads"] = by_kind.get("leads", (0,) * 6)[offset]
        sales = by_kind.get("sales", (0,) * 6)
        answer[f"{part}.sales"] = sales[offset]
        answer[f"{part}.revenue"] = round(float(sales[offset + 2]), 2)
    return answer


def breakdown(
    keys: list[Any], by_kind: dict[str, dict[Any, Any]], lead: str, index: int, total: float
) -> Answer:
    """The breakdown answer: each ranked key's metrics from each kind's (events, visitors,
    revenue) by key, and its share of total by the ranking kind's value at index."""
    answer: Answer = {}
    for i, k in enumerate(keys):
        clicks, leads, sales = (by_kind.get(kind, {}).get(k, (0, 0, 0)) for kind in
                                ("clicks", "leads", "sales"))  # fmt: skip
        row = f"{i}:{k}"
        answer[f"{row}.clicks"] = clicks[0]
        answer[f"{row}.uniqueVisitors"] = clicks[1]
        answer[f"{row}.leads"] = leads[0]
        answer[f"{row}.sales"] = sales[0]
        answer[f"{row}.revenue"] = round(float(sales[2]), 2)
        ranked_value = float(by_kind[lead][k][index])
        answer[f"{row}.share"] = round(ranked_value / total, 6) if total else 0.0
    return answer


class Reference(Protocol):
    """Independent SQL answering each shape (PostgreSQL's baseline, ClickHouse's exact)."""

    async def overview(self, kinds: tuple[str, ...], ctx: Any) -> Answer: ...
    async def timeseries(self, kinds: tuple[str, ...], ctx: Any) -> Answer: ...
    async def breakdown(self, shape: Breakdown, ctx: Any) -> Answer: ...
    async def funnel(self, ctx: Any) -> Answer: ...


async def by_shape(reference: Reference, shape: Shape, ctx: Any) -> Answer:
    """reference's answer to a route of that shape."""
    if isinstance(shape, Overview):
        return await reference.overview(shape.kinds, ctx)
    if isinstance(shape, Timeseries):
        return await reference.timeseries(shape.kinds, ctx)
    if isinstance(shape, Breakdown):
        return await reference.breakdown(shape, ctx)
    if isinstance(shape, Funnel):
        return await reference.funnel(ctx)
    raise TypeError(f"unknown shape {shape!r}")


# uniqCombined(12): exact up to 256 visitors, then an HLL of 4,096 cells (standard error ~1.6%);
# 7% is about 4.4 standard errors (the worst group measured on the 10M-click demo data: 6.3%).
VISITOR_TOLERANCE = 0.07
METRICS = ("clicks", "uniqueVisitors", "leads", "sales", "revenue")


def from_gateway(shape: Shape, data: dict[str, Any]) -> Answer:
    """The normalised answer of a gateway response's `data`."""
    answer: Answer = {}
    if isinstance(shape, Overview):
        for part in ("totals", "previous"):
            for metric in METRICS:
                answer[f"{part}.{metric}"] = data.get(part, {}).get(metric, 0)
    elif isinstance(shape, Timeseries):
        for point in data.get("points", []):
            for metric in METRICS:
                answer[f"{point['time']}.{metric}"] = point.get(metric, 0)
    elif isinstance(shape, Breakdown):
        for i, row in enumerate(data.get("rows", [])):
            for metric in (*METRICS, "share"):
                answer[f"{i}:{row['key']}.{metric}"] = row.get(metric, 0)
    elif isinstance(shape, Funnel):
        for step in data.get("steps", []):
            answer[f"{step['name']}.count"] = step.get("count", 0)
    return answer


def _close(metric: str, got: float, want: float) -> bool:
    if metric == "uniqueVisitors":
        return abs(got - want) <= VISITOR_TOLERANCE * max(abs(want), 1)
    if metric == "revenue":
        return abs(got - want) <= 0.011 + 1e-9 * abs(want)
    if metric == "share":
        return abs(got - want) <= 2e-6
    return got == want


def differences(got: Answer, want: Answer, limit: int = 5, expected: str = "postgres") -> list[str]:
    """Where got differs from want (computed by `expected`) beyond tolerance (a missing entry
    counts as 0)."""
    found = []
    for key in sorted(set(got) | set(want)):
        metric = key.rsplit(".", 1)[1]
        g, w = float(got.get(key, 0)), float(want.get(key, 0))
        if not _close(metric, g, w):
            found.append(f"{key}: gateway {g:g}, {expected} {w:g}")
    if len(found) > limit:
        found = found[:limit] + [f"… {len(found) - limit} more"]
    return found


def worst_visitor_error(got: Answer, want: Answer) -> float:
    """Largest relative difference of unique visitors between the two answers."""
    worst = 0.0
    for key, w in want.items():
        if key.endswith(".uniqueVisitors") and w:
            worst = max(worst, abs(float(got.get(key, 0)) - float(w)) / float(w))
    return worst
