"""Which events a query reads: event kinds, allow-listed dimensions and the shared predicates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.query.filter_tree import COLUMNS, Predicate

EVENT_KINDS = ("clicks", "leads", "sales")

# Allow-listed dimensions: API name -> column. Only these names ever reach SQL.
DIMENSIONS = {**COLUMNS, "link": "link_id"}
# Dimensions only clicks carry.
CLICK_DIMENSIONS = {
    **DIMENSIONS,
    "rule": "rule_id",
    "condition": "condition_id",
    "destination": "destination_url",
}
FILTERABLE = ("country", "device", "browser", "os", "trigger", "referrer", "continent")


def dimensions(kind: str) -> dict[str, str]:
    """The allow-listed dimensions of an event kind: API name -> column."""
    return CLICK_DIMENSIONS if kind == "clicks" else DIMENSIONS


@dataclass(frozen=True)
class DimensionFilter:
    """Keep (or, with exclude, drop) events whose dimension is one of values."""

    dimension: str
    values: tuple[object, ...]
    exclude: bool = False


@dataclass(frozen=True)
class EventScope:
    """The events of one kind and workspace in a UTC range, narrowed by links, filters and bots."""

    kind: str
    workspace_id: int
    start: datetime
    end: datetime
    # When set, the scope reaches back to compare_start (the previous period, before start).
    compare_start: datetime | None = None
    # None: every link of the workspace; a tuple: only these (empty: none).
    link_ids: tuple[int, ...] | None = None
    filters: tuple[DimensionFilter, ...] = ()
    include_bots: bool = False
    # The query API's filter tree, compiled (services/query/filter_tree.py).
    predicate: Predicate | None = None

    def where(self, time: str = "timestamp") -> tuple[list[str], dict[str, Any]]:
        """Predicates and parameters of the scope: workspace first, range, links, bots, filters."""
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}")
        dims = dimensions(self.kind)
        params: dict[str, Any] = {
            "ws": self.workspace_id,
            "end": int(self.end.timestamp()),
            "start": int(self.start.timestamp()),
            "compare_start": int(self.compare_start.timestamp()) if self.compare_start else 0,
        }
        lower = "start" if self.compare_start is None else "compare_start"
        where = [
            "workspace_id = %(ws)s",
            f"{time} >= toDateTime(%({lower})s)",
            f"{time} < toDateTime(%(end)s)",
        ]
        if self.link_ids is not None:
            params["links"] = tuple(self.link_ids)  # a tuple renders as an IN list
            where.append("link_id IN %(links)s")
        if not self.include_bots:
            where.append("is_bot = 0")
        for i, flt in enumerate(self.filters):
            params[f"f{i}"] = tuple(flt.values)
            where.append(f"{dims[flt.dimension]} {'NOT IN' if flt.exclude else 'IN'} %(f{i})s")
        if self.predicate is not None:
            params.update(self.predicate.params)
            where.append(self.predicate.sql)
        return where, params
