"""Installing ClickHouse with apt when the server binary is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.devstack import apt, clickhouse_server
from services.devstack.failures import DevstackError


@pytest.fixture
def apt_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """apt-get invocations, answered from a script instead of run."""
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(apt.shutil, "which", lambda name: f"/usr/bin/{name}")
    return calls


def _fake_apt(calls: list[tuple[str, ...]], results: list[int]) -> object:
    def run(what: str, *args: str) -> int:
        calls.append(args)
        return results.pop(0)

    return run


def test_install_retries_after_apt_update(
    monkeypatch: pytest.MonkeyPatch, apt_calls: list[tuple[str, ...]]
) -> None:
    monkeypatch.setattr(apt, "_apt", _fake_apt(apt_calls, [100, 0, 0]))
    monkeypatch.setattr(
        clickhouse_server, "find_server", lambda binary=None: "/usr/sbin/clickhouse-server"
    )
    assert clickhouse_server.install_server() == "/usr/sbin/clickhouse-server"
    install = ("install", "-y", "--no-install-recommends", "clickhouse-server", "clickhouse-client")
    assert apt_calls == [install, ("update",), install]


def test_install_failure_is_reported(
    monkeypatch: pytest.MonkeyPatch, apt_calls: list[tuple[str, ...]]
) -> None:
    monkeypatch.setattr(apt, "_apt", _fake_apt(apt_calls, [100, 0, 100]))
    with pytest.raises(DevstackError, match="apt-get install"):
        clickhouse_server.install_server()


def test_multi_tool_binary_gets_the_server_subcommand() -> None:
    config = Path("/run/ch/config.xml")
    assert clickhouse_server.server_argv("/opt/ch/clickhouse", config) == (
        "/opt/ch/clickhouse",
        "server",
        "--config-file=/run/ch/config.xml",
    )
    assert clickhouse_server.server_argv("/usr/sbin/clickhouse-server", config) == (
        "/usr/sbin/clickhouse-server",
        "--config-file=/run/ch/config.xml",
    )
