"""SQL of visitor click sequences: both selections share the scope's predicates."""

from __future__ import annotations

from datetime import UTC, datetime

from services.query.predicates import DimensionFilter
from services.query.sequences import SequenceQuery, compile_sequences

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 3, 8, tzinfo=UTC)


def test_visitors_through_a_link_and_their_clicks_share_one_scope():
    sql, params = compile_sequences(
        SequenceQuery(7, START, END, through=4, filters=(DimensionFilter("country", ("US",)),))
    )
    condition = (
        "workspace_id = %(ws)s AND timestamp >= toDateTime(%(start)s)"
        " AND timestamp < toDateTime(%(end)s) AND is_bot = 0 AND country IN %(f0)s"
    )
    assert sql.count(condition) == 2
    assert f"FROM clicks WHERE {condition} AND link_id = %(through)s" in sql
    assert "GROUP BY visitor_id LIMIT %(max_visitors)s" in sql
    assert (params["through"], params["max_visitors"], params["f0"]) == (4, 20000, ("US",))
