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
REDIS_DB = 14
# The bench system listens on its own ports, so a dev stack (`make up`) and a test run are left
# alone; ClickHouse, PostgreSQL and Redis servers are shared, the databases are not.
PORTS = {
    "QUERY_GRPC_ADDR": "127.0.0.1:58051",
    "LIVE_GRPC_ADDR": "127.0.0.1:58052",
    "EXPORT_GRPC_ADDR": "127.0.0.1:58053",
    "AUDIT_GRPC_ADDR": "127.0.0.1:58054",
    "GATEWAY_HOST": "127.0.0.1",
    "GATEWAY_PORT": "58080",
}
DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks.md"


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

    def command(self) -> str:
        """The make invocation that repeats this run."""
        return (
            f"make bench BENCH_CLICKS={self.clicks} BENCH_REPEAT={self.repeat}"
            f" BENCH_PG_REPEAT={self.pg_repeat} BENCH_PG_SECONDS={self.pg_seconds:g}"
        )


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
        "--only", default=env.get("BENCH_ONLY", ""), help="comma-separated route names to run"
    )
    args = parser.parse_args(argv)
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
    )


def _with_database(url: str, database: str) -> str:
    parsed = urlparse(url)
    return urlunparse(parsed._replace(path=f"/{database}"))


def system_env(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Environment of the bench processes: the configured servers, the bench databases."""
    database_url = env.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/linkpulse"
    clickhouse_url = env.get("CLICKHOUSE_URL") or "clickhouse://default@127.0.0.1:9000/linkpulse"
    redis_url = env.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    return {
        "DATABASE_URL": _with_database(database_url, DATABASE),
        "CLICKHOUSE_URL": _with_database(clickhouse_url, DATABASE),
        "REDIS_URL": _with_database(redis_url, str(REDIS_DB)),
        "LINKPULSE_RUN_DIR": str(ROOT / ".run" / "bench"),
        # The bench measures speed on whatever Redis is configured, durable or not.
        "INGEST_REQUIRE_DURABLE_REDIS": env.get("INGEST_REQUIRE_DURABLE_REDIS") or "warn",
        **PORTS,
    }
