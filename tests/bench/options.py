"""What one benchmark run does (clicks, repetitions, output) and the environment of its system."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from services.config import ROOT

DATABASE = "linkpulse_bench"
# Databases of the multi-tenant section (tests/bench/tenant_data.py), never the route bench's.
RESERVED = ("linkpulse_bench_tenants", "linkpulse_bench_alone")
REDIS_DB = 14
# The bench system listens on its own ports (BENCH_PORT_BASE + 51..54 for gRPC, + 80 for the
# gateway), so a dev stack (`make up`) and a test run are left alone; ClickHouse, PostgreSQL and
# Redis servers are shared, the databases are not. The multi-tenant section's two systems use
# the base + 100 and + 200, the cluster section's + 300 and + 400. The default is above Linux's
# ephemeral range (32768-60999): an outgoing connection's local port there made a listen fail.
PORT_BASE = 61000
DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks.md"
DEFAULT_CONNECTIONS = (16, 64, 256)


@dataclass(frozen=True)
class BenchOptions:
    """One run: dataset size, repetitions per measurement, where the report goes."""

    clicks: int
    days: int
    repeat: int
    warmup: int
    # PostgreSQL is orders of magnitude slower: it gets at most pg_repeat samples per route and
    # stops early (never below min(5, pg_repeat)) once a route has used pg_seconds.
    pg_repeat: int
    pg_seconds: float
    fresh: bool
    output: Path
    only: tuple[str, ...]
    # The multi-tenant section (tests/bench/tenants.py): clicks of its dataset (0: off), its
    # workspaces, samples per route and workspace.
    tenants: int = 0
    tenant_workspaces: int = 10_000
    tenant_repeat: int = 15
    # The concurrency section (tests/bench/concurrency.py): seconds per wrk run (0: off) and
    # the connection counts.
    wrk_seconds: int = 10
    connections: tuple[int, ...] = (16, 64, 256)  # DEFAULT_CONNECTIONS
    # The database of the route bench's demo dataset (PostgreSQL and ClickHouse).
    database: str = "linkpulse_bench"
    port_base: int = PORT_BASE
    # The cluster section (tests/bench/cluster.py): the same data on the dev ClickHouse cluster.
    cluster: bool = False

    def command(self) -> str:
        """The make invocation that repeats this run."""
        command = (
            f"make bench BENCH_CLICKS={self.clicks} BENCH_REPEAT={self.repeat}"
            f" BENCH_PG_REPEAT={self.pg_repeat} BENCH_PG_SECONDS={self.pg_seconds:g}"
        )
        if self.tenants:
            command += (
                f" BENCH_TENANTS={self.tenants} BENCH_TENANT_WORKSPACES={self.tenant_workspaces}"
                f" BENCH_TENANT_REPEAT={self.tenant_repeat}"
            )
        command += f" BENCH_WRK_SECONDS={self.wrk_seconds}"
        if self.connections != DEFAULT_CONNECTIONS:
            command += f" BENCH_CONNECTIONS={','.join(map(str, self.connections))}"
        if self.cluster:
            command += " BENCH_CLUSTER=1"
        if self.database != DATABASE:
            command += f" BENCH_DATABASE={self.database}"
        if self.port_base != PORT_BASE:
            command += f" BENCH_PORT_BASE={self.port_base}"
        if self.only:
            command += f" BENCH_ONLY='{','.join(self.only)}'"
        output = self.output.resolve()
        if output != DEFAULT_OUTPUT:
            shown = output.relative_to(ROOT) if output.is_relative_to(ROOT) else output
            command += f" BENCH_OUTPUT={shown}"
        return command


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").replace("_", "")
    return int(raw) if raw else default


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    return float(raw) if raw else default


def parse(argv: Sequence[str] | None = None, env: Mapping[str, str] = os.environ) -> BenchOptions:
    """Options from the command line, defaulting to BENCH_* environment variables."""
    repeat = _env_int(env, "BENCH_REPEAT", 30)
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description="Benchmark the main analytics routes over the gateway (uncached and cached)"
        " against the same SQL run directly on ClickHouse and on a plain PostgreSQL table.",
    )
    parser.add_argument("--clicks", type=int, default=_env_int(env, "BENCH_CLICKS", 10_000_000))
    parser.add_argument("--days", type=int, default=_env_int(env, "BENCH_DAYS", 90))
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--warmup", type=int, default=_env_int(env, "BENCH_WARMUP", 3))
    parser.add_argument("--pg-repeat", type=int, default=_env_int(env, "BENCH_PG_REPEAT", repeat))
    parser.add_argument(
        "--pg-seconds", type=float, default=_env_float(env, "BENCH_PG_SECONDS", 60.0)
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        default=env.get("BENCH_FRESH", "") not in ("", "0", "no", "false"),
        help="rebuild the dataset even if one of the same size exists",
    )
    parser.add_argument(
        "--output", type=Path, default=Path(env.get("BENCH_OUTPUT") or DEFAULT_OUTPUT)
    )
    parser.add_argument(
        "--only",
        default=env.get("BENCH_ONLY", ""),
        help="comma-separated route names and sections (export, live, tenants, concurrency,"
        " cluster)",
    )
    parser.add_argument(
        "--tenants",
        type=int,
        default=_env_int(env, "BENCH_TENANTS", 0),
        help="clicks of the multi-tenant section's dataset (0: no such section)",
    )
    parser.add_argument(
        "--tenant-workspaces", type=int, default=_env_int(env, "BENCH_TENANT_WORKSPACES", 10_000)
    )
    parser.add_argument(
        "--tenant-repeat",
        type=int,
        default=_env_int(env, "BENCH_TENANT_REPEAT", 15),
        help="samples per route and workspace in the multi-tenant section",
    )
    parser.add_argument(
        "--wrk-seconds",
        type=int,
        default=_env_int(env, "BENCH_WRK_SECONDS", -1),
        help="seconds per wrk run of the concurrency section (0: no such section; default 10,"
        " 3 under a million clicks)",
    )
    parser.add_argument(
        "--connections",
        default=env.get("BENCH_CONNECTIONS", "16,64,256"),
        help="comma-separated wrk connection counts",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        default=env.get("BENCH_CLUSTER", "") not in ("", "0", "no", "false"),
        help="add the cluster section: the same data and routes on the dev ClickHouse cluster",
    )
    parser.add_argument("--database", default=env.get("BENCH_DATABASE") or DATABASE)
    parser.add_argument(
        "--port-base", type=int, default=_env_int(env, "BENCH_PORT_BASE", PORT_BASE)
    )
    args = parser.parse_args(argv)
    if args.wrk_seconds < 0:  # a smoke run (under a million clicks) gets short wrk runs
        args.wrk_seconds = 10 if args.clicks >= 1_000_000 else 3
    if args.tenants and args.tenants < args.tenant_workspaces * 10:
        parser.error("--tenants must be at least 10 clicks per workspace (--tenant-workspaces)")
    if not args.database.startswith(DATABASE) or args.database in RESERVED:
        parser.error(f"--database must start with {DATABASE} and not be one of {RESERVED}")
    if args.clicks < 1000:
        parser.error("--clicks must be at least 1000")
    if args.repeat < 1 or args.pg_repeat < 1 or args.warmup < 0:
        parser.error("--repeat and --pg-repeat must be at least 1, --warmup at least 0")
    return BenchOptions(
        clicks=args.clicks,
        days=args.days,
        repeat=args.repeat,
        warmup=args.warmup,
        pg_repeat=args.pg_repeat,
        pg_seconds=args.pg_seconds,
        fresh=args.fresh,
        output=args.output,
        only=tuple(name.strip() for name in args.only.split(",") if name.strip()),
        tenants=args.tenants,
        tenant_workspaces=args.tenant_workspaces,
        tenant_repeat=max(1, args.tenant_repeat),
        wrk_seconds=args.wrk_seconds,
        connections=tuple(int(c) for c in args.connections.split(",") if c.strip()),
        database=args.database,
        port_base=args.port_base,
        cluster=args.cluster,
    )


def _with_database(url: str, database: str) -> str:
    parsed = urlparse(url)
    return urlunparse(parsed._replace(path=f"/{database}"))


def system_env(
    env: Mapping[str, str] = os.environ, database: str = DATABASE, port_base: int = PORT_BASE
) -> dict[str, str]:
    """Environment of the bench processes: the configured servers, the bench databases."""
    database_url = env.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/linkpulse"
    clickhouse_url = env.get("CLICKHOUSE_URL") or "clickhouse://default@127.0.0.1:9000/linkpulse"
    redis_url = env.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    return {
        "DATABASE_URL": _with_database(database_url, database),
        "CLICKHOUSE_URL": _with_database(clickhouse_url, database),
        "REDIS_URL": _with_database(redis_url, str(REDIS_DB)),
        "LINKPULSE_RUN_DIR": str(ROOT / ".run" / "bench"),
        # The bench measures speed on whatever Redis is configured, durable or not.
        "INGEST_REQUIRE_DURABLE_REDIS": env.get("INGEST_REQUIRE_DURABLE_REDIS") or "warn",
        **ports(port_base),
    }


def ports(base: int) -> dict[str, str]:
    """The listen addresses of a bench system whose ports are base+51.. (gRPC) and base+80."""
    return {
        "QUERY_GRPC_ADDR": f"127.0.0.1:{base + 51}",
        "LIVE_GRPC_ADDR": f"127.0.0.1:{base + 52}",
        "EXPORT_GRPC_ADDR": f"127.0.0.1:{base + 53}",
        "AUDIT_GRPC_ADDR": f"127.0.0.1:{base + 54}",
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(base + 80),
    }


def other_system_env(
    base_env: Mapping[str, str], database: str, redis_db: int, port_base: int, run_name: str
) -> dict[str, str]:
    """The environment of another bench system: base_env on its own databases, Redis database,
    ports and run directory (so it runs beside the route bench's system)."""
    return {
        **base_env,
        "DATABASE_URL": _with_database(base_env["DATABASE_URL"], database),
        "CLICKHOUSE_URL": _with_database(base_env["CLICKHOUSE_URL"], database),
        "REDIS_URL": _with_database(base_env["REDIS_URL"], str(redis_db)),
        "LINKPULSE_RUN_DIR": str(ROOT / ".run" / run_name),
        **ports(port_base),
    }
