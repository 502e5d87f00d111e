"""Answers ClickHouse formats itself, streamed over HTTP; a late failure is never taken as data."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.config import Settings
from services.errors import StoreUnavailable
from services.stores import clickhouse_http
from services.stores.clickhouse import ClickHouseTarget


def _target(system) -> ClickHouseTarget:
    return ClickHouseTarget.from_url(system.settings.clickhouse_url)


def _nodes(system) -> list[tuple[str, int]]:
    return clickhouse_http.endpoints(_target(system), system.settings)


def test_streams_in_chunks_with_parameters(system):
    sql = "SELECT number, %(word)s FROM system.numbers LIMIT %(n)s FORMAT CSV"
    params = {"word": "it's", "n": 300_000}
    with clickhouse_http.stream(_target(system), _nodes(system), sql, params) as body:
        chunks = list(body)
    data = b"".join(chunks)
    assert len(chunks) > 1 and data.count(b"\n") == 300_000
    assert data.startswith(b'0,"it\'s"\n')


def test_an_error_after_the_first_bytes_raises(system):
    sql = "SELECT number, throwIf(number = 2000000) FROM system.numbers LIMIT 3000000 FORMAT CSV"
    with pytest.raises(StoreUnavailable, match="mid-answer"):
        with clickhouse_http.stream(_target(system), _nodes(system), sql, {}) as body:
            for _ in body:
                pass


def test_a_refused_query_and_a_missing_server(system):
    nodes = _nodes(system)
    with pytest.raises(clickhouse_http.ClickHouseQueryError):
        with clickhouse_http.stream(_target(system), nodes, "SELECT nonsense FORMAT CSV", {}):
            pass
    with pytest.raises(StoreUnavailable):
        with clickhouse_http.stream(_target(system), [("127.0.0.1", 1)], "SELECT 1 FORMAT CSV", {}):
            pass


def test_a_host_that_refuses_the_connection_is_skipped(system):
    nodes = [("127.0.0.1", 1), *_nodes(system)]
    with clickhouse_http.stream(_target(system), nodes, "SELECT 7 FORMAT CSV", {}) as body:
        assert b"".join(body) == b"7\n"


def test_each_host_of_the_url_gets_its_own_listed_port():
    settings = replace(
        Settings(),
        clickhouse_url="clickhouse://default@10.0.0.1:9101/db?alt_hosts=10.0.0.2:9102,10.0.0.3:9103",
        clickhouse_http_port=8201,
        clickhouse_http_ports=(8201, 8202, 8203),
    )
    target = ClickHouseTarget.from_url(settings.clickhouse_url).spread()
    found = dict(clickhouse_http.endpoints(target, settings))
    assert found == {"10.0.0.1": 8201, "10.0.0.2": 8202, "10.0.0.3": 8203}
    one_port = replace(settings, clickhouse_http_ports=())
    assert {port for _, port in clickhouse_http.endpoints(target, one_port)} == {8201}
