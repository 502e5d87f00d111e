"""`stack up --cluster`: ZooKeeper, the ClickHouse cluster, and two copies of every process."""

from __future__ import annotations

from typing import Any

from services.config import Settings
from services.devstack import clickhouse_cluster, copies, local_stores, processes
from services.devstack.clickhouse_cluster import ClusterState
from services.devstack.cluster_layout import ClusterLayout
from services.devstack.failures import DevstackError
from services.devstack.processes import ProcessState
from services.devstack.stack import (
    STATE_FILE,
    external,
    load_demo,
    read_json,
    readable_logs,
    run_linkpulse,
    say,
    summary_fields,
    tolerate_a_volatile_redis,
    write_json,
)
from services.protos import SERVICES

MODE = "cluster"


def process_env(settings: Settings, layout: ClusterLayout) -> dict[str, str]:
    """What every process of the cluster stack runs with: the cluster's CLICKHOUSE_URL and
    CLICKHOUSE_CLUSTER, and each service's copies as a comma-separated address list."""
    return {**layout.env(), **copies.address_env(settings)}


def up(
    settings: Settings, clickhouse_bin: str | None = None, timeout: float = 60.0
) -> dict[str, Any]:
    """Start backends, ZooKeeper, the cluster, migrations, demo data and every copy."""
    readable_logs()
    state_path = settings.run_dir / STATE_FILE
    previous = read_json(state_path)
    if previous.get("processes") and previous.get("mode") != MODE:
        # Copy 1 of each service would find the single stack's process on its port.
        raise DevstackError("the single-node stack runs; stop it first with `linkpulse stack down`")
    for backend in local_stores.ensure_all(settings):
        say(f"{backend.name} {backend.state} at {backend.endpoint}")
    tolerate_a_volatile_redis(settings)
    layout = ClusterLayout.from_settings(settings)
    cluster = clickhouse_cluster.ensure_cluster(layout, clickhouse_bin)
    say(f"ZooKeeper {cluster.zookeeper.state} at {cluster.zookeeper.endpoint}")
    for node in cluster.nodes:
        say(f"ClickHouse {node.name} (shard {node.shard}) {node.state} at {node.endpoint}")
    env = process_env(settings, layout)
    state = read_json(state_path)
    state.update(mode=MODE, env=env)
    write_json(state_path, state)

    run_linkpulse("migrate", env=env)
    demo = load_demo(settings, env)

    started: list[ProcessState] = []
    for spec in copies.specs(settings, env, timeout):
        result = external(spec) or processes.start(spec)
        say(f"{spec.name} {result.state}" + (f" (pid {result.pid})" if result.pid else ""))
        started.append(result)
    state["processes"] = [p.name for p in started if p.state in ("started", "running")]
    write_json(state_path, state)
    return summary(settings, demo, cluster, started)


def summary(
    settings: Settings, demo: dict[str, Any], cluster: ClusterState, procs: list[ProcessState]
) -> dict[str, Any]:
    """What a developer needs after `up --cluster`: URLs, address lists, nodes, the demo key."""
    grpc = {
        service: [str(e) for e in copies.service_endpoints(settings, service)]
        for service in SERVICES
    }
    return {
        "mode": MODE,
        **summary_fields(settings, demo, grpc, procs),
        "cluster": cluster.as_dict(),
        "metrics": copies.metrics(settings),
    }


def format_summary(result: dict[str, Any]) -> str:
    """The summary of `up --cluster` as lines for a terminal."""
    cluster = result["cluster"]
    nodes = [
        f"  {n['name']:<11} {n['address']} (shard {n['shard']}, {n['state']}, {n['version']})"
        for n in cluster["nodes"]
    ]
    env = " ".join(f"{name}='{value}'" for name, value in cluster["env"].items())
    lines = [
        f"linkpulse dev stack is up on ClickHouse cluster '{cluster['cluster']}'",
        "",
        f"  gateway     {result['gateway']}",
        *(f"  {name:<11} {', '.join(addrs)}" for name, addrs in result["grpc"].items()),
        f"  zookeeper   {cluster['zookeeper']['address']} ({cluster['zookeeper']['state']})",
        *nodes,
        f"  workspace   {result['workspace_id']}",
        f"  api key     {result['api_key']}",
        f"  dashboard   {result['dashboard']}",
        f"  logs        {result['logs']}",
        "",
        "  " + result["curl"],
        f"  {env} linkpulse ...   # a command against the cluster",
        "",
        "Stop it with `make down` (`make clean` or `linkpulse stack down --all` also stops the"
        " cluster).",
    ]
    return "\n".join(lines)
