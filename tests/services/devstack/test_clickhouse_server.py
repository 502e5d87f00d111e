"""ClickHouse ensure: starts the project server once, reuses it after, stops only its own."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.config import Settings
from services.devstack import clickhouse_server
from services.devstack.endpoints import Endpoint
from services.devstack.failures import DevstackError
from services.devstack.probes import tcp_open
from tests.ports import free_port
from tests.services.devstack.helpers import isolated_settings

pytestmark = pytest.mark.skipif(
    clickhouse_server.find_server() is None,
    reason="clickhouse-server is not installed (`linkpulse stack clickhouse` installs it)",
)


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings of a ClickHouse of its own on free ports; stopped afterwards."""
    settings = isolated_settings(tmp_path / "run")
    yield settings
    clickhouse_server.stop(settings)


def test_ensure_starts_once_then_reuses(settings: Settings, tmp_path: Path) -> None:
    first = clickhouse_server.ensure(settings)
    assert first.state == "started"
    assert first.pid is not None and first.version
    assert first.config == settings.run_dir / "clickhouse" / "config.xml"
    assert (settings.run_dir / "pids" / "clickhouse.pid").read_text().strip() == str(first.pid)

    second = clickhouse_server.ensure(settings)
    assert second.state == "running"
    assert second.pid == first.pid

    # Another run dir with the same ports finds the server answering and starts nothing.
    other = Settings(**{**settings.__dict__, "run_dir": tmp_path / "other"})
    reused = clickhouse_server.ensure(other)
    assert reused.state == "reused" and reused.pid is None
    assert not (tmp_path / "other" / "clickhouse" / "config.xml").exists()
    assert clickhouse_server.stop(other).state == "not running"
    assert clickhouse_server.status(other).state == "external"

    assert clickhouse_server.status(settings).state == "running"
    assert clickhouse_server.stop(settings).state == "stopped"
    assert not tcp_open(second.endpoint)


def test_server_answers_in_utc(settings: Settings) -> None:
    from clickhouse_driver import Client

    state = clickhouse_server.ensure(settings)
    client = Client(state.endpoint.connect_host, state.endpoint.port)
    try:
        assert client.execute("SELECT timezone()")[0][0] in ("UTC", "Etc/UTC")
    finally:
        client.disconnect()


def test_port_taken_by_something_else_is_reported(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = isolated_settings(
            tmp_path / "run", clickhouse_url=f"clickhouse://default@127.0.0.1:{port}/linkpulse"
        )
        with pytest.raises(DevstackError, match=f"port {port} is in use"):
            clickhouse_server.ensure(settings)
    assert not (settings.run_dir / "pids" / "clickhouse.pid").exists()


def test_remote_server_is_only_checked(tmp_path: Path) -> None:
    settings = isolated_settings(
        tmp_path / "run", clickhouse_url=f"clickhouse://default@192.0.2.1:{free_port()}/x"
    )
    with pytest.raises(DevstackError, match="no ClickHouse answers"):
        clickhouse_server.ensure(settings)
    assert not (settings.run_dir / "clickhouse").exists()
    assert Endpoint("192.0.2.1", 1).is_local is False
