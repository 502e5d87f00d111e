"""Session fixtures: fresh test databases on the real servers and the whole system on sockets."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent

# Test processes listen on their own ports and use their own databases, so a running dev stack
# (`make up`) is left alone; the ClickHouse server itself is shared.
TEST_ENV = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/linkpulse_test",
    "CLICKHOUSE_URL": "clickhouse://default@127.0.0.1:9000/linkpulse_test",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    "QUERY_GRPC_ADDR": "127.0.0.1:57051",
    "LIVE_GRPC_ADDR": "127.0.0.1:57052",
    "EXPORT_GRPC_ADDR": "127.0.0.1:57053",
    "AUDIT_GRPC_ADDR": "127.0.0.1:57054",
    "GATEWAY_HOST": "127.0.0.1",
    "GATEWAY_PORT": "57080",
    "AUTH_CACHE_SECONDS": "1",
    # Workspace ids restart with the fresh databases: short-lived snapshots keep a quick re-run
    # from meeting the last run's (Redis db 15 is not flushed).
    "SNAPSHOT_TTL_SECONDS": "3",
}
for _name, _value in TEST_ENV.items():
    os.environ[_name] = os.environ.get(f"LINKPULSE_TEST_{_name}", _value)

from services import config  # noqa: E402
from services.admin import credentials, links, tenants  # noqa: E402
from services.devstack import clickhouse as devstack_clickhouse  # noqa: E402
from services.devstack import processes  # noqa: E402
from services.devstack.endpoints import from_addr  # noqa: E402
from services.devstack.probes import http_probe, tcp_probe  # noqa: E402
from services.stores.clickhouse import ClickHouse, ClickHouseTarget  # noqa: E402
from services.stores.migrate import migrate  # noqa: E402

PROCESSES = ("query", "live", "export", "audit", "gateway")


@pytest.fixture(scope="session")
def settings() -> config.Settings:
    """Settings of the system under test."""
    return config.load()


async def _fresh_databases(settings: config.Settings) -> None:
    url = settings.database_url
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    target = ClickHouseTarget.from_url(settings.clickhouse_url)
    server = ClickHouse(ClickHouseTarget(**{**target.__dict__, "database": "default"}), pool_size=1)
    await server.command(f"DROP DATABASE IF EXISTS {target.database}")
    server.close()
    await migrate(settings.database_url, settings.clickhouse_url)


def _spec(settings: config.Settings, name: str) -> processes.ProcessSpec:
    run = settings.run_dir / "test"
    if name == "gateway":
        ready = http_probe(
            from_addr(f"{settings.gateway_host}:{settings.gateway_port}"), "/openapi.json"
        )
    else:
        ready = tcp_probe(from_addr(settings.grpc_addr(name)))
    return processes.ProcessSpec(
        name=f"test-{name}",
        argv=(sys.executable, "-m", "services.cli.main", "serve", name),
        pid_path=run / "pids" / f"{name}.pid",
        log_path=run / "logs" / f"{name}.log",
        ready=ready,
        marker=f"services.cli.main serve {name}",
        env={k: os.environ[k] for k in TEST_ENV},
        ready_timeout=60,
    )


@dataclass
class System:
    """The running system under test."""

    settings: config.Settings
    specs: dict[str, processes.ProcessSpec] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        """Base URL of the HTTP gateway."""
        return f"http://{self.settings.gateway_host}:{self.settings.gateway_port}"

    def channel(self, service: str) -> grpc.aio.Channel:
        """A new insecure channel to one of the gRPC services."""
        return grpc.aio.insecure_channel(self.settings.grpc_addr(service))


@pytest.fixture(scope="session")
async def system(settings: config.Settings) -> AsyncIterator[System]:
    """ClickHouse ensured, fresh databases migrated, every service and the gateway running."""
    devstack_clickhouse.ensure(settings)
    await _fresh_databases(settings)
    running = System(settings)
    for name in PROCESSES:
        spec = _spec(settings, name)
        processes.stop(spec)  # a leftover from an interrupted run must not serve old code
        processes.start(spec)
        running.specs[name] = spec
    yield running
    for spec in running.specs.values():
        processes.stop(spec)


@pytest.fixture(scope="session")
async def pg(system: System) -> AsyncIterator[asyncpg.Pool]:
    """Pool on the test PostgreSQL database."""
    pool = await asyncpg.create_pool(system.settings.database_url, min_size=1, max_size=4)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def ch(system: System) -> Iterator[ClickHouse]:
    """ClickHouse facade on the test database."""
    store = ClickHouse.from_url(system.settings.clickhouse_url, pool_size=2)
    yield store
    store.close()


@pytest.fixture(scope="session")
async def http(system: System) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP client on the gateway."""
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        yield client


@dataclass
class Tenant:
    """A workspace with an API key and links, made for one test."""

    workspace_id: int
    key: str
    link_ids: list[int]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers authenticating as this tenant."""
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """gRPC metadata authenticating as this tenant."""
        return (("authorization", f"Bearer {self.key}"),)


DEFAULT_SCOPES = ("analytics:read", "events:write", "workspace:update")


@pytest.fixture
def tenant(pg: asyncpg.Pool) -> Callable[..., Awaitable[Tenant]]:
    """Factory of fresh tenants: `await tenant(plan=..., timezone=..., links=2, scopes=...)`."""

    async def make(
        plan: str = "business",
        timezone: str = "UTC",
        currency: str = "USD",
        links_count: int = 2,
        scopes: tuple[str, ...] = DEFAULT_SCOPES,
    ) -> Tenant:
        ws = await tenants.create_workspace(
            pg, "Test", plan=plan, timezone=timezone, currency=currency
        )
        key = await credentials.create_api_key(pg, ws["id"], list(scopes))
        made = [
            await links.create_link(
                pg,
                ws["id"],
                domain="t.lp",
                slug=f"w{ws['id']}-{i}",
                destination_url=f"https://example.com/{i}",
            )
            for i in range(links_count)
        ]
        return Tenant(ws["id"], key["key"], [m["id"] for m in made])

    return make
