"""deploy/prometheus and deploy/grafana: promtool accepts the scrape config and the alert rules,
the alerts' unit tests pass, the dashboard's PromQL parses, and every metric named anywhere is one
that services/telemetry/metrics.py defines; the compose file runs them wired to every process."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import services.telemetry.metrics  # noqa: F401 - registers every linkpulse metric
from services.config import METRICS_PORTS
from services.devstack.components import COMPONENTS

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "linkpulse-overview.json"
# Grafana's own variables in the dashboard's queries, and a value promtool can parse for each.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
# Sample names each metric type exposes (prometheus-client names a counter's family without
# its _total).
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
METRIC_NAME = re.compile(r"\blinkpulse_[a-z0-9_]+")


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is needed (make test installs it: apt-get install prometheus)"
    return found


def _run_promtool(*args: str | Path) -> str:
    done = subprocess.run(
        [_promtool(), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def families() -> dict[str, str]:
    """Every linkpulse metric family defined by services.telemetry.metrics, with its type."""
    found = {m.name: m.type for m in REGISTRY.collect() if m.name.startswith("linkpulse_")}
    assert found, "services.telemetry.metrics registered no linkpulse_ metric"
    return found


@pytest.fixture(scope="module")
def sample_names(families: dict[str, str]) -> set[str]:
    """The names a query can use: linkpulse_x_total, linkpulse_y_bucket, linkpulse_z, …"""
    return {name + suffix for name, kind in families.items() for suffix in SUFFIXES[kind]}


@pytest.fixture(scope="module")
def dashboard_exprs() -> list[str]:
    """Every PromQL expression of the dashboard's panels."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) > 20
    return exprs


def _alert_rules() -> list[dict[str, Any]]:
    return [r for g in _yaml(PROMETHEUS_DIR / "alerts.yml")["groups"] for r in g["rules"]]


def _compose() -> dict[str, Any]:
    value = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(value, dict)
    return value


def test_promtool_accepts_the_scrape_config_and_its_rules() -> None:
    out = _run_promtool("check", "config", PROMETHEUS_DIR / "prometheus.yml")
    assert "1 rule files found" in out


def test_promtool_accepts_the_alert_rules() -> None:
    out = _run_promtool("check", "rules", PROMETHEUS_DIR / "alerts.yml")
    assert f"{len(_alert_rules())} rules found" in out


def test_the_alerts_unit_tests_pass() -> None:
    assert "SUCCESS" in _run_promtool("test", "rules", PROMETHEUS_DIR / "alerts.test.yml")


def test_the_alert_tests_prove_each_alert_fires_and_stays_silent() -> None:
    cases = [
        case
        for test in _yaml(PROMETHEUS_DIR / "alerts.test.yml")["tests"]
        for case in test["alert_rule_test"]
    ]
    for rule in _alert_rules():
        mine = [c for c in cases if c["alertname"] == rule["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"{rule['alert']} is never shown firing"
        assert any(not c["exp_alerts"] for c in mine), f"{rule['alert']} is never shown silent"


def test_every_alert_says_how_bad_what_and_where_to_look() -> None:
    rules = _alert_rules()
    assert len({r["alert"] for r in rules}) == len(rules)
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert set(rule["annotations"]) >= {"summary", "description", "runbook"}, rule["alert"]
        assert "Operating it" in rule["annotations"]["runbook"], rule["alert"]


def test_the_alerts_cover_what_loses_money() -> None:
    exprs = " ".join(r["expr"] for r in _alert_rules())
    for needle in (
        "linkpulse_flusher_lag_seconds",
        "linkpulse_clickhouse_errors_total",
        'linkpulse_http_requests_total{status=~"5.."}',
        'linkpulse_jobs_total{state="failed"}',
        "linkpulse_ingest_stream_length",
        "up{",
    ):
        assert needle in exprs


def test_the_dashboard_queries_parse(dashboard_exprs: list[str], tmp_path: Path) -> None:
    rules = []
    for i, expr in enumerate(dashboard_exprs):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unknown variable in {expr}"
        rules.append({"record": f"linkpulse_dashboard:query_{i}", "expr": expr})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"{len(rules)} rules found" in _run_promtool("check", "rules", path)


def test_queries_name_only_defined_metrics(
    dashboard_exprs: list[str], sample_names: set[str]
) -> None:
    for source, exprs in (
        ("dashboard", dashboard_exprs),
        ("alerts.yml", [r["expr"] for r in _alert_rules()]),
    ):
        for expr in exprs:
            unknown = set(METRIC_NAME.findall(expr)) - sample_names
            assert not unknown, f"{source}: {expr} names undefined {sorted(unknown)}"


def test_the_dashboard_shows_every_metric(
    dashboard_exprs: list[str], families: dict[str, str]
) -> None:
    used = {n for e in dashboard_exprs for n in METRIC_NAME.findall(e)}
    for name, kind in families.items():
        assert any(name + s in used for s in SUFFIXES[kind]), f"no panel shows {name}"


def test_grafana_is_provisioned_with_the_prometheus_service_and_the_dashboard() -> None:
    compose = _compose()["services"]
    grafana = compose["grafana"]
    mounts = {
        PurePosixPath(target): ROOT / source
        for source, target, *_ in (m.split(":") for m in grafana["volumes"])
        if source.startswith("./")
    }
    provisioning = PurePosixPath("/etc/grafana/provisioning")
    (source,) = [s for t, s in mounts.items() if t == provisioning / "datasources"]
    (datasource,) = _yaml(source / "prometheus.yml")["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in compose and "9090:9090" in compose["prometheus"]["ports"][0]
    (source,) = [s for t, s in mounts.items() if t == provisioning / "dashboards"]
    (provider,) = _yaml(source / "linkpulse.yml")["providers"]
    loaded = mounts[PurePosixPath(provider["options"]["path"])]
    assert DASHBOARD.parent == loaded
    dashboard = json.loads(DASHBOARD.read_text())
    (variable,) = dashboard["templating"]["list"]
    assert variable["current"]["value"] == datasource["uid"]
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert PurePosixPath(home) == PurePosixPath(provider["options"]["path"]) / DASHBOARD.name


def _metrics_port(name: str, service: dict[str, Any]) -> int:
    env = service["environment"]
    if name == "gateway":
        return int(env["GATEWAY_PORT"])
    override = env.get("METRICS_PORT") or env.get(f"{name.upper()}_METRICS_PORT")
    return int(override) if override else METRICS_PORTS[name]


def test_prometheus_scrapes_every_process_of_the_compose_file() -> None:
    compose = _compose()["services"]
    config = _yaml(PROMETHEUS_DIR / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(COMPONENTS) <= set(jobs)
    for name in COMPONENTS:
        job = jobs[name]
        assert job.get("metrics_path", "/metrics") == "/metrics"
        (static,) = job["static_configs"]
        service = compose[name]
        assert static["targets"] == [f"{name}:{_metrics_port(name, service)}"]
        if name != "gateway":
            assert service["environment"]["METRICS_HOST"] == "0.0.0.0"
        else:
            assert service["environment"]["GATEWAY_HOST"] == "0.0.0.0"


def test_prometheus_runs_the_config_and_its_rule_files() -> None:
    prometheus = _compose()["services"]["prometheus"]
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", prometheus["image"])
    mounts = {
        PurePosixPath(target): ROOT / source
        for source, target, *_ in (m.split(":") for m in prometheus["volumes"])
        if source.startswith("./")
    }
    (flag,) = [a for a in prometheus["command"] if a.startswith("--config.file=")]
    config_path = PurePosixPath(flag.split("=", 1)[1])
    assert mounts[config_path] == PROMETHEUS_DIR / "prometheus.yml"
    for rule_file in _yaml(PROMETHEUS_DIR / "prometheus.yml")["rule_files"]:
        assert mounts[config_path.parent / rule_file] == PROMETHEUS_DIR / rule_file
