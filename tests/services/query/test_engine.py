"""The query engine's SQL: table choice, keys, metrics, compare periods, order and limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.query.engine import EventQuery, compile_query
from services.query.predicates import DimensionFilter

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 3, 8, tzinfo=UTC)


def _query(**overrides) -> EventQuery:
    args = dict(kind="clicks", workspace_id=7, start=START, end=END)
    args.update(overrides)
    return EventQuery(**args)


def _where(sql: str) -> str:
    return sql.split(" WHERE ", 1)[1]


def test_totals_read_the_workspace_rollup_scoped_by_workspace_first():
    sql, params = compile_query(_query())
    assert sql == (
        "SELECT 0 AS k0, countMerge(events) AS m0, uniqCombinedMerge(12)(visitors) AS m1,"
        " toFloat64(0) AS m2 FROM clicks_hourly_workspace WHERE workspace_id = %(ws)s"
        " AND hour >= toDateTime(%(start)s) AND hour < toDateTime(%(end)s) AND is_bot = 0"
    )
    assert params["ws"] == 7


def test_time_and_link_keys_stay_on_the_link_rollup():
    sql, _ = compile_query(_query(group_by=("time", "link")))
    assert " FROM clicks_hourly_link " in sql
    assert sql.endswith(" GROUP BY k0, k1 ORDER BY k0, k1")


def test_links_and_groups_of_links_read_the_link_rollup():
    for q in (
        _query(link_ids=(3,)),
        _query(group_by=("time",), link_ids=(3, 4)),
        _query(group_by=("group",), link_groups=((3, 5),)),
    ):
        sql, _ = compile_query(q)
        assert " FROM clicks_hourly_link " in sql, q


def test_leads_and_sales_read_their_link_rollups_with_or_without_links():
    for kind in ("leads", "sales"):
        for q in (_query(kind=kind), _query(kind=kind, link_ids=(3,))):
            sql, _ = compile_query(q)
            assert f" FROM {kind}_hourly " in sql, q


def test_other_dimensions_filters_and_odd_instants_read_the_raw_table():
    for q in (
        _query(group_by=("country",)),
        _query(filters=(DimensionFilter("device", ("Mobile",)),)),
        _query(start=START + timedelta(minutes=30)),
        # Half-hour zone: day buckets do not fall on whole UTC hours.
        _query(group_by=("time",), tz="Asia/Kolkata"),
    ):
        sql, _ = compile_query(q)
        assert " FROM clicks WHERE workspace_id = %(ws)s " in sql, q


def test_every_statement_starts_its_predicates_with_the_workspace():
    for kind in ("clicks", "leads", "sales"):
        for group_by in ((), ("time",), ("country",), ("link",)):
            sql, _ = compile_query(_query(kind=kind, group_by=group_by))
            assert _where(sql).startswith("workspace_id = %(ws)s AND "), (kind, group_by)


def test_dimension_groups_are_ordered_by_the_metric_and_limited():
    sql, params = compile_query(_query(group_by=("country",), order_by="visitors", limit=10))
    assert sql.startswith(
        "SELECT country AS k0, count() AS m0, uniqCombined(12)(visitor_hash) AS m1,"
    )
    assert sql.endswith(" GROUP BY k0 ORDER BY m1 DESC, k0 LIMIT %(limit)s")
    assert params["limit"] == 10


def test_time_buckets_are_ordered_by_time_and_never_limited():
    sql, params = compile_query(_query(group_by=("time",), limit=10))
    assert sql.endswith(" GROUP BY k0 ORDER BY k0")
    assert "limit" not in params


def test_a_compare_period_adds_previous_metrics_over_the_wider_range():
    before = START - timedelta(days=7)
    sql, params = compile_query(_query(compare_start=before))
    assert (
        "countMergeIf(events, hour >= toDateTime(%(start)s)) AS m0,"
        " uniqCombinedMergeIf(12)(visitors, hour >= toDateTime(%(start)s)) AS m1,"
        " toFloat64(0) AS m2, countMergeIf(events, hour < toDateTime(%(start)s)) AS m3,"
        " uniqCombinedMergeIf(12)(visitors, hour < toDateTime(%(start)s)) AS m4,"
        " toFloat64(0) AS m5"
    ) in sql
    assert "hour >= toDateTime(%(compare_start)s)" in sql
    assert params["compare_start"] == int(before.timestamp())


def test_revenue_converts_each_currency_by_its_factor():
    sql, params = compile_query(_query(kind="sales", revenue_factors={"USD": 1.0, "EUR": 1.1}))
    assert "sum(amount * transform(currency, %(fx_codes)s, %(fx_factors)s, 0.0)) AS m2" in sql
    assert params["fx_codes"] == ["USD", "EUR"]
    assert params["fx_factors"] == [1.0, 1.1]


def test_visitors_are_left_out_when_not_asked_for():
    sql, _ = compile_query(_query(with_visitors=False))
    assert "toUInt64(0) AS m1" in sql
    assert "uniq" not in sql


def test_filters_and_links_are_parameters_not_sql_text():
    sql, params = compile_query(
        _query(link_ids=(3, 1), filters=(DimensionFilter("country", ("US'--",), exclude=True),))
    )
    assert _where(sql).endswith("link_id IN %(links)s AND is_bot = 0 AND country NOT IN %(f0)s")
    assert params["links"] == (3, 1)
    assert params["f0"] == ("US'--",)
    assert "US'--" not in sql


def test_groups_are_array_parameters_sorted_by_link():
    sql, params = compile_query(_query(group_by=("group",), link_groups=((3, 5), (1, 6), (1, 5))))
    assert "transform(link_id, %(group_links)s, %(group_starts)s, 0)" in sql
    assert params["group_ids"] == [5, 6, 5]
    # Each distinct link once, with its 1-based slice of group_ids.
    assert params["group_links"] == [1, 3]
    assert params["group_starts"] == [1, 3]
    assert params["group_counts"] == [2, 1]
