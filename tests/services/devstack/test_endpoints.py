"""Host/port parsing of settings values."""

from __future__ import annotations

import pytest

from services.devstack.endpoints import Endpoint, from_addr, from_url, is_local_host


def test_addr_with_host_name() -> None:
    assert from_addr("query:50051") == Endpoint("query", 50051)


def test_addr_with_ipv6_literal() -> None:
    endpoint = from_addr("[::1]:50052")
    assert endpoint == Endpoint("::1", 50052)
    assert str(endpoint) == "[::1]:50052"


@pytest.mark.parametrize("addr", ["50051", "query:", "query:http"])
def test_addr_without_port_is_rejected(addr: str) -> None:
    with pytest.raises(ValueError):
        from_addr(addr)


def test_url_port_and_default_port() -> None:
    assert from_url("clickhouse://default@10.0.0.5:9440/x", 9000) == Endpoint("10.0.0.5", 9440)
    assert from_url("postgresql://postgres@db/linkpulse", 5432) == Endpoint("db", 5432)


def test_wildcard_listen_address_is_reached_on_loopback() -> None:
    assert Endpoint("0.0.0.0", 8080).connect_host == "127.0.0.1"
    assert Endpoint("::", 8080).connect_host == "::1"
    assert Endpoint("10.1.2.3", 8080).connect_host == "10.1.2.3"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "localhost", "::1", "0.0.0.0"])
def test_local_hosts(host: str) -> None:
    assert is_local_host(host)


@pytest.mark.parametrize("host", ["clickhouse", "10.0.0.5", "db.example.com"])
def test_remote_hosts(host: str) -> None:
    assert not is_local_host(host)
