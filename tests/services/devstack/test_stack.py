"""Stack orchestration pieces: component specs, demo output parsing, summary, down/status."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest

from services.cli import stack as stack_cli
from services.devstack import components, stack
from services.devstack.clickhouse_server import ClickHouseState
from services.devstack.endpoints import Endpoint
from services.devstack.failures import DevstackError
from services.protos import SERVICES
from tests.services.devstack.helpers import isolated_settings


def test_components_start_in_dependency_order(tmp_path: Path) -> None:
    specs = components.specs(isolated_settings(tmp_path))
    assert [s.name for s in specs] == [
        "query", "live", "export", "audit", "worker", "flusher", "gateway",
    ]  # fmt: skip


def test_component_spec_runs_linkpulse_serve(tmp_path: Path) -> None:
    spec = components.spec(isolated_settings(tmp_path), "query")
    assert spec.argv == (sys.executable, "-m", "services.cli.main", "serve", "query")
    assert spec.pid_path == tmp_path / "pids" / "query.pid"
    assert spec.log_path == tmp_path / "logs" / "query.log"
    assert spec.identity == "services.cli.main serve query"
    assert spec.ready is not None and not spec.ready()  # nothing listens on the free port


def test_worker_has_no_port_probe(tmp_path: Path) -> None:
    assert components.spec(isolated_settings(tmp_path), "worker").ready is None


def test_gateway_url_uses_loopback_for_wildcard_host(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path, gateway_host="0.0.0.0", gateway_port=8080)
    assert components.gateway_url(settings) == "http://127.0.0.1:8080"


def test_demo_json_is_found_after_log_lines() -> None:
    output = 'loading 1000 clicks\n{\n  "workspace_id": 7,\n  "api_key": "lp_x"\n}\n'
    assert stack.parse_json_object(output) == {"workspace_id": 7, "api_key": "lp_x"}


def test_missing_demo_json_is_an_error() -> None:
    with pytest.raises(DevstackError):
        stack.parse_json_object("no json here\n")


def test_summary_has_addresses_key_and_curl(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path, gateway_port=8080)
    ch = ClickHouseState("started", Endpoint("127.0.0.1", 9000), 8123, 42, "18.16.1")
    demo = {
        "workspace_id": 7,
        "api_key": "lp_key",
        "dashboard_url": "http://127.0.0.1:8080/dashboard#token=lpd_x",
    }
    result = stack.summary(settings, demo, ch, [])
    assert result["gateway"] == "http://127.0.0.1:8080"
    assert result["grpc"] == {n: settings.grpc_addr(n) for n in SERVICES}
    assert result["curl"] == (
        'curl -H "Authorization: Bearer lp_key" '
        '"http://127.0.0.1:8080/api/analytics/workspace/overview?days=30"'
    )
    text = stack.format_summary(result)
    assert result["curl"] in text and "lp_key" in text and settings.query_addr in text
    assert "dashboard   http://127.0.0.1:8080/dashboard#token=lpd_x" in text


def test_down_and_status_with_nothing_running(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path)
    down = stack.down(settings)
    assert {p["state"] for p in down["processes"]} == {"not running"}
    assert down["clickhouse"] is None
    status = stack.status(settings)
    assert {p["state"] for p in status["processes"]} == {"not running"}
    assert status["clickhouse"]["state"] == "not running"


def test_cli_registers_stack_commands() -> None:
    parser = argparse.ArgumentParser()
    stack_cli.register(parser.add_subparsers(dest="command", required=True))
    for argv in (["stack", "up", "--json"], ["stack", "down", "--all"], ["stack", "status"]):
        assert callable(parser.parse_args(argv).handler)
    args = parser.parse_args(["stack", "clickhouse", "--clickhouse-bin", "/opt/ch/clickhouse"])
    assert args.clickhouse_bin == "/opt/ch/clickhouse" and not args.stop


def test_the_dev_stack_logs_text_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    # Set, then removed: monkeypatch restores the variable as it was before the test.
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.delenv("LOG_FORMAT")
    stack.readable_logs()
    assert os.environ["LOG_FORMAT"] == "text"
    monkeypatch.setenv("LOG_FORMAT", "json")
    stack.readable_logs()
    assert os.environ["LOG_FORMAT"] == "json"
