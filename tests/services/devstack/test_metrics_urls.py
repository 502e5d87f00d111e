"""`stack status` lists where each process serves its metrics; each copy has its own port."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.devstack import components, copies, metrics_urls, stack
from tests.services.devstack.helpers import isolated_settings

PORTS = {"QUERY": 19471, "LIVE": 19472, "EXPORT": 19473, "AUDIT": 0, "WORKER": 19475}


@pytest.fixture(autouse=True)
def _metrics_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METRICS_PORT", raising=False)
    monkeypatch.delenv("FLUSHER_METRICS_PORT", raising=False)  # its default, 9476
    for name, port in PORTS.items():
        monkeypatch.setenv(f"{name}_METRICS_PORT", str(port))


def test_single_stack_status_lists_each_metrics_url(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path, metrics_host="0.0.0.0")
    listed = {p["name"]: p["metrics"] for p in stack.status(settings)["processes"]}
    assert listed == {
        "query": "http://127.0.0.1:19471/metrics",
        "live": "http://127.0.0.1:19472/metrics",
        "export": "http://127.0.0.1:19473/metrics",
        "audit": None,  # its port is 0: it serves none
        "worker": "http://127.0.0.1:19475/metrics",
        "flusher": "http://127.0.0.1:9476/metrics",
        "gateway": components.gateway_url(settings) + "/metrics",
    }


def test_up_summary_names_every_metrics_url(tmp_path: Path) -> None:
    from services.devstack.clickhouse_server import ClickHouseState
    from services.devstack.endpoints import Endpoint

    settings = isolated_settings(tmp_path)
    ch = ClickHouseState("started", Endpoint("127.0.0.1", 9000), 8123, 42, "18.16.1")
    result = stack.summary(settings, {}, ch, [])
    assert result["metrics"] == metrics_urls.of_components(settings)
    assert result["metrics"]["worker"] == "http://127.0.0.1:19475/metrics"


def test_cluster_copies_get_ports_of_their_own(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path)
    specs = {spec.name: spec for spec in copies.specs(settings, {})}
    assert specs["query-1"].env[metrics_urls.PORT_VARIABLE] == "19471"
    assert specs["query-2"].env[metrics_urls.PORT_VARIABLE] == str(19471 + copies.COPY_PORT_STEP)
    assert specs["flusher-2"].env[metrics_urls.PORT_VARIABLE] == str(9476 + copies.COPY_PORT_STEP)
    assert specs["audit-2"].env[metrics_urls.PORT_VARIABLE] == "0"
    assert metrics_urls.PORT_VARIABLE not in specs["gateway-1"].env
    stack.write_json(tmp_path / stack.STATE_FILE, {"mode": "cluster"})
    listed = {p["name"]: p["metrics"] for p in stack.status(settings)["processes"]}
    assert listed["query-2"] == f"http://127.0.0.1:{19471 + copies.COPY_PORT_STEP}/metrics"
    assert listed["worker-1"] == "http://127.0.0.1:19475/metrics"
    assert listed["audit-1"] is None
    assert listed["gateway-1"] == components.gateway_url(settings) + "/metrics"
    ports = [spec.env.get(metrics_urls.PORT_VARIABLE) for spec in specs.values()]
    served = [p for p in ports if p and p != "0"]
    assert len(served) == len(set(served))
