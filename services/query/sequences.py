"""Visitor click sequences: per visitor who clicked one link, all their clicks in time order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.query.predicates import DimensionFilter, EventScope
from services.stores.clickhouse import ClickHouse


@dataclass(frozen=True)
class SequenceQuery:
    """Per visitor, their clicks (time, link) in order, for visitors who clicked `through`."""

    workspace_id: int
    start: datetime
    end: datetime
    through: int
    max_visitors: int = 20000
    include_bots: bool = False
    filters: tuple[DimensionFilter, ...] = ()

    @property
    def scope(self) -> EventScope:
        """The clicks the sequences are made of."""
        return EventScope(
            kind="clicks",
            workspace_id=self.workspace_id,
            start=self.start,
            end=self.end,
            filters=self.filters,
            include_bots=self.include_bots,
        )


def compile_sequences(q: SequenceQuery) -> tuple[str, dict[str, Any]]:
    """SQL returning (visitor_id, [epoch seconds], [link ids]) sorted by time per visitor."""
    where, params = q.scope.where()
    params.update(through=q.through, max_visitors=q.max_visitors)
    condition = " AND ".join(where)
    sql = (
        "SELECT visitor_id, arrayMap(p -> p.1, pairs), arrayMap(p -> p.2, pairs) FROM ("
        " SELECT visitor_id, arraySort(groupArray((toUInt32(timestamp), link_id))) AS pairs"
        f" FROM clicks WHERE {condition} AND visitor_id IN ("
        f"  SELECT visitor_id FROM clicks WHERE {condition} AND link_id = %(through)s"
        "   GROUP BY visitor_id LIMIT %(max_visitors)s)"
        " GROUP BY visitor_id)"
    )
    return sql, params


async def run_sequences(ch: ClickHouse, q: SequenceQuery) -> list[tuple[str, list[int], list[int]]]:
    """Click sequences of the visitors who clicked q.through in the range."""
    sql, params = compile_sequences(q)
    return [(r[0], list(r[1]), list(r[2])) for r in await ch.fetch(sql, params)]
