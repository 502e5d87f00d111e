"""Query API pieces outside the e2e answers: the statement time limit, the plan as an export job
stores it, and the routes' filters the simple trees become."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import grpc
import pytest
from clickhouse_driver import errors as ch_errors
from google.protobuf import json_format

from services import config, protos
from services.query import filter_tree, query_api
from services.query.predicates import DimensionFilter
from services.stores.clickhouse import ClickHouse, ClickHouseTarget


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[ClickHouse]:
    """The ClickHouse server of the tests, on its default database."""
    target = ClickHouseTarget.from_url(config.load().clickhouse_url)
    store = ClickHouse(replace(target, database="default"), pool_size=1)
    yield store
    store.close()


async def test_a_statement_stopped_at_its_time_limit_is_a_504(server: ClickHouse) -> None:
    # max_rows_to_read bounds the statement should the time limit not stop it (another code).
    limits = {"max_execution_time": 1, "max_rows_to_read": 3_000_000_000}
    with pytest.raises(ch_errors.ServerException) as stopped:
        await server.fetch("SELECT count() FROM numbers(100000000000)", {}, settings=limits)
    error = query_api.timed_out(stopped.value, 1)
    assert error is not None and error.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "QUERY_TIMEOUT_SECONDS" in error.message
    with pytest.raises(ch_errors.ServerException) as broken:
        await server.fetch("SELECT no_such_column FROM system.one")
    assert query_api.timed_out(broken.value, 1) is None


def tree(data: dict) -> filter_tree.Node:
    return filter_tree.parse(json_format.ParseDict(data, protos.analytics_query_pb2.FilterNode()))


def test_simple_trees_become_the_routes_filters() -> None:
    conjunction = tree(
        {
            "and": [
                {"dimension": "country", "op": "is_not", "values": ["FR"]},
                {"dimension": "link", "op": "is", "values": ["4", "5"]},
            ]
        }
    )
    assert query_api.simple_filters(conjunction) == (
        DimensionFilter("country", ("FR",), True),
        DimensionFilter("link", (4, 5), False),
    )
    assert query_api.simple_filters(None) == ()
    for other in (
        {"or": [{"dimension": "country", "op": "is", "values": ["FR"]}]},
        {"dimension": "city", "op": "contains", "values": ["Par"]},
        {"dimension": "campaign", "op": "is", "values": ["3"]},
        {"not": {"dimension": "country", "op": "is", "values": ["FR"]}},
    ):
        assert query_api.simple_filters(tree(other)) is None, other
