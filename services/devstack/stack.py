"""`stack up/down/status`: the whole local stack, in dependency order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from services.config import Settings
from services.devstack import (
    clickhouse_cluster,
    clickhouse_server,
    components,
    copies,
    local_stores,
    metrics_urls,
    processes,
    supervisor,
)
from services.devstack.cluster_layout import ClusterLayout
from services.devstack.failures import DevstackError
from services.devstack.processes import ProcessSpec, ProcessState
from services.protos import SERVICES

STATE_FILE = "stack.json"
DEMO_FILE = "demo.json"
OVERVIEW_PATH = "/api/analytics/workspace/overview?days=30"
# The live service's check of Redis persistence (services.live.durability).
DURABILITY_VARIABLE = "INGEST_REQUIRE_DURABLE_REDIS"


def say(message: str) -> None:
    """Progress line on stderr (stdout is kept for the result)."""
    print(f"linkpulse stack: {message}", file=sys.stderr, flush=True)


def read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def write_json(path: Path, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    tmp.replace(path)


def run_linkpulse(*args: str, capture: bool = False, env: Mapping[str, str] | None = None) -> str:
    """Run a linkpulse sub-command to completion (with env added to ours); its stdout if
    captured, else ''."""
    argv = [sys.executable, "-m", "services.cli.main", *args]
    say(f"linkpulse {' '.join(args)}")
    result = subprocess.run(
        argv,
        stdout=subprocess.PIPE if capture else sys.stderr,
        text=True,
        check=False,
        env={**os.environ, **env} if env else None,
    )
    if result.returncode != 0:
        raise DevstackError(f"`linkpulse {' '.join(args)}` failed with status {result.returncode}")
    return result.stdout or ""


def load_demo(settings: Settings, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Load (or reuse) the demo workspace, mint a dashboard link to it, and keep both in the
    run dir; the demo's answer with `dashboard_url` added."""
    demo = parse_json_object(run_linkpulse("demo", capture=True, env=env))
    workspace = demo.get("workspace_id")
    if workspace is not None:
        link = parse_json_object(
            run_linkpulse("dashboard", "link", "--workspace", str(workspace), capture=True, env=env)
        )
        demo["dashboard_url"] = link.get("url", "")
    write_json(settings.run_dir / DEMO_FILE, demo)
    return demo


def parse_json_object(output: str) -> dict[str, Any]:
    """The last JSON object printed in output (commands may log lines before it)."""
    decoder = json.JSONDecoder()
    starts = [i for i, ch in enumerate(output) if ch == "{" and (i == 0 or output[i - 1] == "\n")]
    for start in reversed(starts):
        try:
            value, _ = decoder.raw_decode(output[start:])
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise DevstackError(f"expected a JSON object from the command, got: {output[-500:]!r}")


def curl_line(settings: Settings, api_key: str) -> str:
    """A ready-to-paste request against the workspace overview route."""
    url = components.gateway_url(settings) + OVERVIEW_PATH
    return f'curl -H "Authorization: Bearer {api_key}" "{url}"'


def external(spec: ProcessSpec) -> ProcessState | None:
    # Something we did not start already serves this port: a second copy would only clash.
    if processes.running_pid(spec) is None and spec.ready is not None and spec.ready():
        return ProcessState(spec.name, "external", None, spec.log_path, True)
    return None


def tolerate_a_volatile_redis(settings: Settings) -> None:
    """Let the live service start on a Redis without AOF (an existing one the stack reuses), loud
    in the output, unless INGEST_REQUIRE_DURABLE_REDIS says otherwise."""
    persistence = local_stores.redis_persistence(settings)
    if persistence.durable or os.environ.get(DURABILITY_VARIABLE):
        return
    os.environ[DURABILITY_VARIABLE] = "warn"
    say(
        f"WARNING: {persistence.describe()}. The stack's live service warns instead of refusing"
        f" ({DURABILITY_VARIABLE}=warn); run Redis with --appendonly yes --appendfsync always"
        f" for durable ingestion."
    )


def readable_logs() -> None:
    """The dev stack's processes log readable text unless LOG_FORMAT says otherwise."""
    os.environ.setdefault("LOG_FORMAT", "text")


def up(
    settings: Settings, clickhouse_bin: str | None = None, timeout: float = 60.0
) -> dict[str, Any]:
    """Start backends, ClickHouse, migrations, demo data and every process; return the summary."""
    readable_logs()
    state_path = settings.run_dir / STATE_FILE
    for backend in local_stores.ensure_all(settings):
        say(f"{backend.name} {backend.state} at {backend.endpoint}")
    tolerate_a_volatile_redis(settings)
    ch = clickhouse_server.ensure(settings, clickhouse_bin)
    say(f"ClickHouse {ch.version} {ch.state} at {ch.endpoint}")
    state = read_json(state_path)
    state["clickhouse_started"] = bool(state.get("clickhouse_started")) or ch.state == "started"
    state["mode"] = "single"
    write_json(state_path, state)

    run_linkpulse("migrate")
    demo = load_demo(settings)

    started: list[ProcessState] = []
    # Each process runs under a supervisor that restarts it when it dies.
    for spec in components.supervised_specs(settings, timeout):
        result = external(spec) or processes.start(spec)
        say(f"{spec.name} {result.state}" + (f" (pid {result.pid})" if result.pid else ""))
        started.append(result)
    state["processes"] = [p.name for p in started if p.state in ("started", "running")]
    write_json(state_path, state)
    return summary(settings, demo, ch, started)


def summary(
    settings: Settings,
    demo: dict[str, Any],
    ch: clickhouse_server.ClickHouseState,
    procs: list[ProcessState],
) -> dict[str, Any]:
    """What a developer needs after `up`: URLs, addresses, the demo key, a curl line and a
    dashboard link."""
    grpc = {name: settings.grpc_addr(name) for name in SERVICES}
    return {
        **summary_fields(settings, demo, grpc, procs),
        "clickhouse": ch.as_dict(),
        "metrics": metrics_urls.of_components(settings),
    }


def summary_fields(
    settings: Settings, demo: dict[str, Any], grpc: dict[str, Any], procs: list[ProcessState]
) -> dict[str, Any]:
    """The summary of either stack: the gateway, grpc addresses, the demo key and a curl line,
    the processes and where their logs are."""
    api_key = str(demo.get("api_key", ""))
    return {
        "gateway": components.gateway_url(settings),
        "grpc": grpc,
        "workspace_id": demo.get("workspace_id"),
        "api_key": api_key,
        "curl": curl_line(settings, api_key or "<API_KEY>"),
        "dashboard": str(demo.get("dashboard_url", "")),
        "processes": [p.as_dict() for p in procs],
        "logs": str(settings.run_dir / "logs"),
    }


def format_summary(result: dict[str, Any]) -> str:
    """The summary of `up` as lines for a terminal."""
    ch = result["clickhouse"]
    lines = [
        "linkpulse dev stack is up",
        "",
        f"  gateway     {result['gateway']}",
        *(f"  {name:<11} {addr}" for name, addr in result["grpc"].items()),
        f"  clickhouse  {ch['host']}:{ch['port']} ({ch['state']}, {ch['version']})",
        f"  workspace   {result['workspace_id']}",
        f"  api key     {result['api_key']}",
        f"  dashboard   {result['dashboard']}",
        f"  logs        {result['logs']}",
        "",
        "  " + result["curl"],
        "",
        "Stop it with `make down` (or `linkpulse stack down`).",
    ]
    return "\n".join(lines)


def down(settings: Settings, include_clickhouse: bool = False) -> dict[str, Any]:
    """Stop the processes up (or up --cluster) started, and ClickHouse if up started it (or
    include_clickhouse); the cluster and its ZooKeeper only with include_clickhouse."""
    state_path = settings.run_dir / STATE_FILE
    state = read_json(state_path)
    cluster_mode = state.get("mode") == "cluster"
    # SIGTERM reaches each supervisor with its child (one process group): it stops restarting.
    specs = reversed(components.supervised_specs(settings))
    stopped = [processes.stop(spec) for spec in specs]
    stopped_copies = [processes.stop(spec) for spec in reversed(copies.specs(settings, {}))]
    stopped += [p for p in stopped_copies if cluster_mode or p.state != "not running"]
    for result in stopped:
        if result.state == "stopped":
            say(f"{result.name} stopped (pid {result.pid})")
    ch: dict[str, Any] | None = None
    if include_clickhouse or state.get("clickhouse_started"):
        ch_state = clickhouse_server.stop(settings)
        say(f"ClickHouse {ch_state.state}")
        ch = ch_state.as_dict()
    cluster: dict[str, Any] | None = None
    if include_clickhouse:
        cluster_state = clickhouse_cluster.stop_cluster(ClusterLayout.from_settings(settings))
        for node in cluster_state.nodes:
            if node.state == "stopped":
                say(f"ClickHouse {node.name} stopped (pid {node.pid})")
        say(f"ZooKeeper {cluster_state.zookeeper.state}")
        cluster = cluster_state.as_dict()
    state_path.unlink(missing_ok=True)
    outcome: dict[str, Any] = {"processes": [p.as_dict() for p in stopped], "clickhouse": ch}
    if cluster is not None:
        outcome["cluster"] = cluster
    return outcome


def _supervised_status(settings: Settings, spec: ProcessSpec) -> ProcessState:
    """status() of a process, with its restarts when a supervisor runs it."""
    result = processes.status(spec)
    state = supervisor.read_state(components.supervisor_state_path(settings, spec.name))
    if result.pid is None or state is None:
        return result
    return replace(result, restarts=state.restarts, child_pid=state.child_pid)


def status(settings: Settings, cluster: bool | None = None) -> dict[str, Any]:
    """Backends, ClickHouse and each process: running, ready, pid and log. In cluster mode
    (what the last `up` was, unless cluster says), ZooKeeper, every node and every copy."""
    started = read_json(settings.run_dir / STATE_FILE)
    if cluster is None:
        cluster = started.get("mode") == "cluster"
    specs = copies.specs(settings, {}) if cluster else components.supervised_specs(settings)
    procs = [external(spec) or _supervised_status(settings, spec) for spec in specs]
    demo = read_json(settings.run_dir / DEMO_FILE)
    result: dict[str, Any] = {
        "mode": "cluster" if cluster else "single",
        "backends": [b.as_dict() for b in local_stores.status(settings)],
    }
    if cluster:
        layout = ClusterLayout.from_settings(settings)
        result["cluster"] = clickhouse_cluster.cluster_status(layout).as_dict()
    else:
        result["clickhouse"] = clickhouse_server.status(settings).as_dict()
    urls = copies.metrics(settings) if cluster else metrics_urls.of_components(settings)
    result.update(
        processes=metrics_urls.listed([p.as_dict() for p in procs], urls),
        gateway=components.gateway_url(settings),
        api_key=demo.get("api_key"),
        started_by_up=started,
    )
    return result
