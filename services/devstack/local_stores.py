"""PostgreSQL and Redis: check they answer, and start the local ones when they do not."""

from __future__ import annotations

import asyncio
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.config import Settings
from services.devstack.endpoints import Endpoint, from_url
from services.devstack.failures import DevstackError
from services.devstack.probes import tcp_open
from services.stores.redis_persistence import Persistence, read_persistence

_START_WAIT_SECONDS = 30.0
_PG_CONF_ROOT = Path("/etc/postgresql")
# What `stack up` starts is durable: every write fsynced to the AOF before Redis answers.
REDIS_PERSISTENCE = "--save '' --appendonly yes --appendfsync always"


@dataclass(frozen=True)
class BackendState:
    """Whether one backend answers and whether this call started it."""

    name: str
    endpoint: Endpoint
    state: str  # reachable | started | unreachable

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form for the CLI."""
        return {"name": self.name, "address": str(self.endpoint), "state": self.state}


def postgres_endpoint(settings: Settings) -> Endpoint:
    """Host and port of DATABASE_URL."""
    return from_url(settings.database_url, 5432)


def redis_endpoint(settings: Settings) -> Endpoint:
    """Host and port of REDIS_URL."""
    return from_url(settings.redis_url, 6379)


def postgres_start_commands() -> list[list[str]]:
    """pg_ctlcluster commands starting the `main` cluster of each installed version."""
    if not _PG_CONF_ROOT.is_dir():
        return []
    return [
        ["pg_ctlcluster", "--skip-systemctl-redirect", version.name, "main", "start"]
        for version in sorted(_PG_CONF_ROOT.iterdir())
        if (version / "main").is_dir()
    ]


def redis_dir(settings: Settings) -> Path:
    """Data directory (the AOF) of the Redis the stack starts."""
    return settings.run_dir / "redis"


def redis_log(settings: Settings) -> Path:
    """Log file of the Redis the stack starts."""
    return settings.run_dir / "logs" / "redis.log"


def redis_start_command(endpoint: Endpoint, settings: Settings) -> list[str]:
    """redis-server command line for a local server on the endpoint's port, with AOF."""
    return [
        *shlex.split(
            f"redis-server --daemonize yes --bind 127.0.0.1 -::1 --port {endpoint.port}"
            f" {REDIS_PERSISTENCE}"
        ),
        "--dir",
        str(redis_dir(settings)),
        "--logfile",
        str(redis_log(settings)),
    ]


def _wait_open(endpoint: Endpoint, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not tcp_open(endpoint):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.3)
    return True


def _run(commands: list[list[str]], name: str) -> None:
    for argv in commands:
        if shutil.which(argv[0]) is None:
            raise DevstackError(f"{name} is not running and {argv[0]} is not installed")
        print(f"linkpulse stack: {' '.join(argv)}", file=sys.stderr, flush=True)
        subprocess.call(argv, stdout=sys.stderr)


def _ensure(name: str, env_var: str, endpoint: Endpoint, commands: list[list[str]]) -> BackendState:
    if tcp_open(endpoint):
        return BackendState(name, endpoint, "reachable")
    if not endpoint.is_local:
        raise DevstackError(f"{name} at {endpoint} ({env_var}) is unreachable")
    if not commands:
        raise DevstackError(f"{name} at {endpoint} is not running and no local install was found")
    _run(commands, name)
    if not _wait_open(endpoint, _START_WAIT_SECONDS):
        raise DevstackError(
            f"{name} was started but nothing answers at {endpoint}; check {env_var} and its logs"
        )
    return BackendState(name, endpoint, "started")


def ensure_postgres(settings: Settings) -> BackendState:
    """PostgreSQL answers at DATABASE_URL, starting the local cluster if needed."""
    return _ensure(
        "PostgreSQL", "DATABASE_URL", postgres_endpoint(settings), postgres_start_commands()
    )


def ensure_redis(settings: Settings) -> BackendState:
    """Redis answers at REDIS_URL, starting a local server if needed."""
    endpoint = redis_endpoint(settings)
    if not tcp_open(endpoint) and endpoint.is_local:
        try:
            for directory in (redis_dir(settings), redis_log(settings).parent):
                directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DevstackError(
                f"Redis at {endpoint} is not running and cannot be started: {exc}"
            ) from exc
    return _ensure("Redis", "REDIS_URL", endpoint, [redis_start_command(endpoint, settings)])


def ensure_all(settings: Settings) -> list[BackendState]:
    """PostgreSQL and Redis both answer, or DevstackError says which does not."""
    return [ensure_postgres(settings), ensure_redis(settings)]


def status(settings: Settings) -> list[BackendState]:
    """Reachability of PostgreSQL and Redis, starting nothing."""
    return [
        BackendState(name, endpoint, "reachable" if tcp_open(endpoint) else "unreachable")
        for name, endpoint in (
            ("PostgreSQL", postgres_endpoint(settings)),
            ("Redis", redis_endpoint(settings)),
        )
    ]


def redis_persistence(settings: Settings) -> Persistence:
    """What the Redis at REDIS_URL says about its persistence (unknown if it cannot tell)."""

    async def read() -> Persistence:
        redis = Redis.from_url(settings.redis_url, socket_timeout=2.0)
        try:
            return await read_persistence(redis)
        except (RedisError, OSError):
            return Persistence(None, None)
        finally:
            await redis.aclose()

    return asyncio.run(read())
