"""Answers ClickHouse formats itself, streamed over HTTP; a late failure is never taken as data."""

from __future__ import annotations

import pytest

from services.errors import StoreUnavailable
from services.stores import clickhouse_http
from services.stores.clickhouse import ClickHouseTarget


def _target(system) -> ClickHouseTarget:
    return ClickHouseTarget.from_url(system.settings.clickhouse_url)


def test_streams_in_chunks_with_parameters(system):
    sql = "SELECT number, %(word)s FROM system.numbers LIMIT %(n)s FORMAT CSV"
    params = {"word": "it's", "n": 300_000}
    port = system.settings.clickhouse_http_port
    with clickhouse_http.stream(_target(system), port, sql, params) as body:
        chunks = list(body)
    data = b"".join(chunks)
    assert len(chunks) > 1 and data.count(b"\n") == 300_000
    assert data.startswith(b'0,"it\'s"\n')


def test_an_error_after_the_first_bytes_raises(system):
    sql = "SELECT number, throwIf(number = 2000000) FROM system.numbers LIMIT 3000000 FORMAT CSV"
    port = system.settings.clickhouse_http_port
    with pytest.raises(StoreUnavailable, match="mid-answer"):
        with clickhouse_http.stream(_target(system), port, sql, {}) as body:
            for _ in body:
                pass


def test_a_refused_query_and_a_missing_server(system):
    port = system.settings.clickhouse_http_port
    with pytest.raises(clickhouse_http.ClickHouseQueryError):
        with clickhouse_http.stream(_target(system), port, "SELECT nonsense FORMAT CSV", {}):
            pass
    with pytest.raises(StoreUnavailable):
        with clickhouse_http.stream(_target(system), 1, "SELECT 1 FORMAT CSV", {}):
            pass
