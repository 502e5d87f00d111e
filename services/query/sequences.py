"""Visitor click sequences: per visitor who clicked one link, all their clicks in time order."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.query.predicates import DimensionFilter, EventScope
from services.stores.clickhouse import ClickHouse

# Visitors whose sequences one answer is computed from at most; beyond that, a sample of them.
MAX_VISITORS = 20000


@dataclass(frozen=True)
class SequenceQuery:
    """Per visitor, their clicks (time, link) in order, for visitors who clicked `through`."""

    workspace_id: int
    start: datetime
    end: datetime
    through: int
    max_visitors: int = MAX_VISITORS
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


def _through(q: SequenceQuery) -> tuple[str, dict[str, Any]]:
    """SQL of the distinct visitors who clicked q.through in the scope, and its parameters."""
    where, params = q.scope.where()
    params["through"] = q.through
    condition = " AND ".join(where)
    return f"SELECT visitor_id FROM clicks WHERE {condition} AND link_id = %(through)s", params


def compile_sequences(q: SequenceQuery) -> tuple[str, dict[str, Any]]:
    """SQL returning (visitor_id, [epoch seconds], [link ids]) sorted by time per visitor, for the
    `max_visitors` visitors through the link with the smallest hash of their id (a sample that is
    the same on every run and every ClickHouse version), in visitor order. GLOBAL IN: on a
    cluster the sample is taken once over every shard and sent to them (a plain IN of a
    Distributed table in a query of one is refused as a double-distributed subquery)."""
    through, params = _through(q)
    where, _ = q.scope.where()
    params["max_visitors"] = q.max_visitors
    sql = (
        "SELECT visitor_id, arrayMap(p -> p.1, pairs), arrayMap(p -> p.2, pairs) FROM ("
        " SELECT visitor_id, arraySort(groupArray((toUInt32(timestamp), link_id))) AS pairs"
        f" FROM clicks WHERE {' AND '.join(where)} AND visitor_id GLOBAL IN ("
        f" {through} GROUP BY visitor_id"
        " ORDER BY cityHash64(visitor_id), visitor_id LIMIT %(max_visitors)s)"
        " GROUP BY visitor_id) ORDER BY visitor_id"
    )
    return sql, params


def compile_visitor_count(q: SequenceQuery) -> tuple[str, dict[str, Any]]:
    """SQL counting the distinct visitors who clicked q.through in the scope (exactly)."""
    through, params = _through(q)
    return f"SELECT count() FROM ({through} GROUP BY visitor_id)", params


@dataclass(frozen=True)
class Sequences:
    """Click sequences of (at most max_visitors of) the visitors through a link."""

    visitors: list[tuple[str, list[int], list[int]]]
    # Every visitor through the link in the scope; more than len(visitors) when sampled.
    total_visitors: int


async def run_sequences(ch: ClickHouse, q: SequenceQuery) -> Sequences:
    """Click sequences of the visitors who clicked q.through in the range, and their number."""
    (sql, params), (count_sql, count_params) = compile_sequences(q), compile_visitor_count(q)
    rows, counted = await asyncio.gather(ch.fetch(sql, params), ch.fetch(count_sql, count_params))
    visitors = [(r[0], list(r[1]), list(r[2])) for r in rows]
    return Sequences(visitors, max(int(counted[0][0]) if counted else 0, len(visitors)))
