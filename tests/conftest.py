"""Session fixtures: fresh test databases on the real servers and the whole system on sockets."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from clickhouse_driver.errors import NetworkError
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent


# Each test session gets its own ports, databases and run dir, so a running dev stack
# (`make up`) and other test sessions are left alone; the ClickHouse server itself is shared.
SESSION = f"test_{os.getpid()}"
METRICS_COMPONENTS = ("QUERY", "LIVE", "EXPORT", "AUDIT", "WORKER", "FLUSHER")
TEST_ENV = {
    "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/linkpulse_{SESSION}",
    "CLICKHOUSE_URL": f"clickhouse://default@127.0.0.1:9000/linkpulse_{SESSION}",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    "QUERY_GRPC_ADDR": f"127.0.0.1:{free_port()}",
    "LIVE_GRPC_ADDR": f"127.0.0.1:{free_port()}",
    "EXPORT_GRPC_ADDR": f"127.0.0.1:{free_port()}",
    "AUDIT_GRPC_ADDR": f"127.0.0.1:{free_port()}",
    "GATEWAY_HOST": "127.0.0.1",
    "GATEWAY_PORT": str(free_port()),
    # Each process's Prometheus endpoint (the gateway's is /metrics on its own port).
    **{f"{name}_METRICS_PORT": str(free_port()) for name in METRICS_COMPONENTS},
    "AUTH_CACHE_SECONDS": "1",
    # Pid files and logs of the test processes (ClickHouse keeps the project's .run).
    "LINKPULSE_RUN_DIR": str(ROOT / ".run" / SESSION),
    # Workspace ids restart with each session's databases: short-lived snapshots keep one
    # session from meeting another's in the shared Redis db.
    "SNAPSHOT_TTL_SECONDS": "3",
    # The ingestion stream and keys live in the shared Redis db: one set per session, and a
    # flusher that writes promptly (tests wait for it with `System.drained`).
    "INGEST_STREAM": f"lp:ingest:{SESSION}",
    "INGEST_KEY_PREFIX": f"lp:{SESSION}",
    "FLUSHER_MAX_WAIT_MS": "20",
    # Exports: files under the session's run dir; a killed worker's export resumes quickly.
    "EXPORT_STALLED_SECONDS": "3",
    # The shared test Redis (and CI's) runs without AOF: the live service says so and serves.
    # tests/e2e/test_redis_durability.py runs its own Redis for the refusal and the crash.
    "INGEST_REQUIRE_DURABLE_REDIS": "warn",
    # The processes log as in production (one JSON object per line), whatever the shell says.
    "LOG_FORMAT": "json",
}
# `make test-cluster` (LINKPULSE_TEST_CLUSTER=1): the same suite on the dev ClickHouse cluster
# (ZooKeeper, 2 shards x 2 replicas, started if needed and left running like the single server)
# with two copies of every gRPC service and of the flusher.
CLUSTER = os.environ.get("LINKPULSE_TEST_CLUSTER", "").lower() in ("1", "on", "true", "yes")
COPIES = 2 if CLUSTER else 1
if CLUSTER:
    from services.config import Settings  # noqa: E402
    from services.devstack.cluster_layout import ClusterLayout  # noqa: E402

    _LAYOUT = ClusterLayout.from_settings(
        Settings(clickhouse_url=TEST_ENV["CLICKHOUSE_URL"], run_dir=ROOT / ".run")
    )
    TEST_ENV.update(_LAYOUT.env())
    TEST_ENV.update(
        {
            f"{service.upper()}_GRPC_ADDR": ",".join(
                f"127.0.0.1:{free_port()}" for _ in range(COPIES)
            )
            for service in ("query", "live", "export", "audit")
        }
    )
for _name, _value in TEST_ENV.items():
    os.environ[_name] = os.environ.get(f"LINKPULSE_TEST_{_name}", _value)

from services import config  # noqa: E402
from services.admin import credentials, links, tenants  # noqa: E402
from services.devstack import clickhouse_cluster, components, processes  # noqa: E402
from services.devstack import clickhouse_server as devstack_clickhouse  # noqa: E402
from services.devstack.endpoints import from_addr  # noqa: E402
from services.devstack.probes import tcp_probe  # noqa: E402
from services.errors import StoreUnavailable  # noqa: E402
from services.grpc_server.channels import service_channel  # noqa: E402
from services.protos import SERVICES  # noqa: E402
from services.stores.clickhouse import ClickHouse, ClickHouseTarget  # noqa: E402
from services.stores.cluster import Cluster  # noqa: E402
from services.stores.migrate import migrate  # noqa: E402
from services.stores.redisclient import redis_of  # noqa: E402
from tests import ingest_streams  # noqa: E402
from tests.databases import drop_databases  # noqa: E402

PROCESSES = components.COMPONENTS
# The session's arq worker runs queued jobs (exports, batches) on the session's own queue; the
# tests run the periodic jobs themselves. Exports pause after each 1 MB so progress is seen.
PROCESS_ENV = {"worker": {"WORKER_CRON": "off", "EXPORT_CHUNK_PAUSE_MS": "100"}}


@pytest.fixture(scope="session")
def settings() -> config.Settings:
    """Settings of the system under test."""
    return config.load()


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
        """A new channel to one of the gRPC services (spread over its copies)."""
        return service_channel(self.settings, service)

    async def drained(self, seconds: float = 30.0) -> None:
        """Wait until the flusher has written every accepted event to ClickHouse."""
        await wait_drained(self.settings, seconds)


async def wait_drained(settings: config.Settings, seconds: float = 30.0) -> None:
    """Wait until the ingestion streams' flusher group has read and acknowledged everything."""
    redis = redis_of(settings)
    deadline = time.monotonic() + seconds
    try:
        while not await ingest_streams.is_drained(redis, settings):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{settings.ingest_stream}:* not drained in {seconds}s")
            await asyncio.sleep(0.02)
    finally:
        await redis.aclose()
    if settings.clickhouse_cluster:
        target = ClickHouseTarget.from_url(settings.clickhouse_url, settings.clickhouse_cluster)
        await replicas_synced(target, max(1.0, deadline - time.monotonic()))


async def replicas_synced(target: ClickHouseTarget, seconds: float = 60.0) -> None:
    """On a cluster, wait until every replica has what was written to its shard: the suite
    reads right after writing, possibly through another replica than the one written. A node
    that is down is skipped (it answers nothing); one rejoining (read-only until its old
    ZooKeeper session expires, and behind) is waited for."""
    deadline = time.monotonic() + seconds
    cluster = await Cluster.open(target)
    try:
        for node in cluster.topology.nodes:
            while True:
                try:
                    await cluster.sync_replica(node)
                    break
                except StoreUnavailable as exc:
                    if isinstance(exc.__cause__, NetworkError):
                        break  # down
                    if time.monotonic() > deadline:
                        raise
                await asyncio.sleep(0.5)
    finally:
        cluster.close()


class SyncedClickHouse(ClickHouse):
    """The suite's ClickHouse facade: on a cluster, an insert returns once every replica has it."""

    async def insert(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> int:
        """Insert as ClickHouse.insert does, then wait for the replicas."""
        count = await super().insert(table, columns, rows)
        if self.target.cluster:
            await replicas_synced(self.target)
        return count


def _copies(settings: config.Settings, name: str) -> list[processes.ProcessSpec]:
    """The processes of one component: one, or with CLUSTER two of each gRPC service and of the
    flusher (the first keeps the component's name, the second is `<name>-2`)."""
    env = {**components.spec(settings, name).env, **PROCESS_ENV.get(name, {})}
    if name in SERVICES:
        return [
            components.serve_spec(
                settings,
                name,
                name if i == 0 else f"{name}-{i + 1}",
                tcp_probe(from_addr(address)),
                {**env, "GRPC_LISTEN_ADDR": address}
                | ({"METRICS_PORT": str(free_port())} if i else {}),
            )
            for i, address in enumerate(settings.grpc_addr(name).split(","))
        ]
    first = replace(components.spec(settings, name), env=env)
    if name == "flusher" and COPIES > 1:
        second = {**env, "METRICS_PORT": str(free_port())}
        return [first, components.serve_spec(settings, name, f"{name}-2", None, second)]
    return [first]


@pytest.fixture(scope="session")
async def system(settings: config.Settings) -> AsyncIterator[System]:
    """ClickHouse ensured, fresh databases migrated, every service and the gateway running."""
    if CLUSTER:
        clickhouse_cluster.ensure_cluster(_LAYOUT)
    else:
        devstack_clickhouse.ensure(replace(settings, run_dir=ROOT / ".run"))
    await drop_databases(settings.database_url, settings.clickhouse_url)
    await migrate(
        settings.database_url,
        settings.clickhouse_url,
        settings.clickhouse_cluster,
        settings.clickhouse_sharding,
    )
    running = System(settings)
    for name in PROCESSES:
        for spec in _copies(settings, name):
            processes.start(spec)
            running.specs[spec.name] = spec
    try:
        yield running
    finally:
        for spec in running.specs.values():
            processes.stop(spec)
        # The logs stay in LINKPULSE_RUN_DIR.
        await drop_databases(settings.database_url, settings.clickhouse_url)


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
    store = SyncedClickHouse(
        ClickHouseTarget.from_url(
            system.settings.clickhouse_url, system.settings.clickhouse_cluster
        ),
        pool_size=2,
    )
    yield store
    store.close()


@pytest.fixture(scope="session")
async def http(system: System) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP client on the gateway."""

    async def after_ingest(response: httpx.Response) -> None:
        # Ingestion is asynchronous (stream, then flusher): a test that tracks an event and
        # then queries sees it once the flusher has caught up.
        if response.request.url.path.startswith("/api/track/") and response.status_code == 200:
            await system.drained()

    async with httpx.AsyncClient(
        base_url=system.gateway_url, timeout=30, event_hooks={"response": [after_ingest]}
    ) as client:
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


async def create_tenant(
    pg: asyncpg.Pool | asyncpg.Connection,
    plan: str = "business",
    timezone: str = "UTC",
    currency: str = "USD",
    links_count: int = 2,
    scopes: tuple[str, ...] = DEFAULT_SCOPES,
) -> Tenant:
    """A fresh workspace with an API key and links_count links."""
    ws = await tenants.create_workspace(pg, "Test", plan=plan, timezone=timezone, currency=currency)
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


@pytest.fixture
def tenant(pg: asyncpg.Pool) -> Callable[..., Awaitable[Tenant]]:
    """Factory of fresh tenants: `await tenant(plan=..., links_count=2, scopes=...)`."""

    async def make(**options: Any) -> Tenant:
        return await create_tenant(pg, **options)

    return make


# Hypothesis profiles of the property tests that run the whole system (tests/e2e/test_model.py):
# `ci` is the bounded, reproducible run of `make test`; `fuzz` the long one of `make fuzz`.
# Each example makes a workspace and ingests events, so no per-example deadline.
_SLOW_EXAMPLES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
hypothesis_settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=_SLOW_EXAMPLES,
    print_blob=True,
)
hypothesis_settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=_SLOW_EXAMPLES,
    print_blob=True,
)
