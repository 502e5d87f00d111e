"""SQL of visitor click sequences: both selections share the scope's predicates."""

from __future__ import annotations

from datetime import UTC, datetime

from services.query.predicates import DimensionFilter
from services.query.sequences import SequenceQuery, compile_sequences, compile_visitor_count

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
    assert (params["through"], params["max_visitors"], params["f0"]) == (4, 20000, ("US",))


def test_the_visitor_sample_is_by_hash_so_every_run_picks_the_same():
    sql, _ = compile_sequences(SequenceQuery(7, START, END, through=4))
    assert (
        "GROUP BY visitor_id ORDER BY cityHash64(visitor_id), visitor_id LIMIT %(max_visitors)s)"
    ) in sql
    assert sql.endswith(" GROUP BY visitor_id) ORDER BY visitor_id")


def test_the_visitors_through_the_link_are_counted_in_the_same_scope():
    sql, params = compile_visitor_count(SequenceQuery(7, START, END, through=4))
    assert sql == (
        "SELECT count() FROM (SELECT visitor_id FROM clicks WHERE workspace_id = %(ws)s"
        " AND timestamp >= toDateTime(%(start)s) AND timestamp < toDateTime(%(end)s)"
        " AND is_bot = 0 AND link_id = %(through)s GROUP BY visitor_id)"
    )
    assert params["through"] == 4
