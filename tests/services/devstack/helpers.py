"""Throw-away settings and the environment of processes run with them."""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path

from services.config import Settings
from services.devstack.cluster_layout import node_ports
from tests.ports import free_port


def isolated_settings(run_dir: Path, **overrides: object) -> Settings:
    """Settings on free ports with everything the stack writes under run_dir."""
    values: dict[str, object] = {
        "clickhouse_url": f"clickhouse://default@127.0.0.1:{free_port()}/linkpulse",
        "clickhouse_http_port": free_port(),
        # One server of its own, whatever CLICKHOUSE_CLUSTER and CLICKHOUSE_HTTP_PORT the
        # session runs with (the cluster suite sets both).
        "clickhouse_http_ports": (),
        "clickhouse_cluster": "",
        "query_addr": f"127.0.0.1:{free_port()}",
        "live_addr": f"127.0.0.1:{free_port()}",
        "export_addr": f"127.0.0.1:{free_port()}",
        "audit_addr": f"127.0.0.1:{free_port()}",
        "gateway_host": "127.0.0.1",
        "gateway_port": free_port(),
        "run_dir": run_dir,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment under which a `linkpulse serve` process uses settings' stores, addresses
    and ingestion keys, plus extra."""
    return {
        "DATABASE_URL": settings.database_url,
        "CLICKHOUSE_URL": settings.clickhouse_url,
        "CLICKHOUSE_HTTP_PORT": ",".join(
            map(str, settings.clickhouse_http_ports or (settings.clickhouse_http_port,))
        ),
        "CLICKHOUSE_CLUSTER": settings.clickhouse_cluster,
        "REDIS_URL": settings.redis_url,
        "QUERY_GRPC_ADDR": settings.query_addr,
        "LIVE_GRPC_ADDR": settings.live_addr,
        "EXPORT_GRPC_ADDR": settings.export_addr,
        "AUDIT_GRPC_ADDR": settings.audit_addr,
        "GATEWAY_HOST": settings.gateway_host,
        "GATEWAY_PORT": str(settings.gateway_port),
        "LINKPULSE_RUN_DIR": str(settings.run_dir),
        "INGEST_STREAM": settings.ingest_stream,
        "INGEST_KEY_PREFIX": settings.ingest_key_prefix,
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def free_cluster_ports(attempts: int = 50) -> tuple[int, int]:
    """A dev-cluster port base whose node ports are all free, and a free ZooKeeper port."""
    for _ in range(attempts):
        base = random.randrange(20000, 40000, 100)
        try:
            with contextlib.ExitStack() as stack:
                for port in node_ports(base):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return base, free_port()
        except OSError:
            continue
    raise RuntimeError("no free port range for a test cluster")
