"""The product on a 3-master Redis Cluster (Debian's redis-server, started here): ingest counted
exactly once, the live feed, the snapshot cache and rate limits, with REDIS_CLUSTER=on.

Run: `.venv/bin/python -m pytest -o addopts= tests/cluster/test_redis_cluster.py`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace

import asyncpg
import grpc
import httpx
import pytest
from redis import Redis as SyncRedis

from services import config, protos
from services.devstack import clickhouse_server as devstack_clickhouse
from services.devstack import components, processes
from services.stores.clickhouse import ClickHouse
from services.stores.migrate import migrate
from services.stores.redisclient import create_redis
from tests.conftest import ROOT, create_tenant, wait_drained
from tests.databases import drop_databases
from tests.services.devstack.helpers import isolated_settings, process_env

PORTS = (7101, 7102, 7103)
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
FREE_PER_MINUTE = 60  # the free plan's requests_per_minute
DAY = "2026-06-01"

pytestmark = pytest.mark.skipif(
    not os.path.exists(REDIS_SERVER), reason="needs Debian's redis-server"
)


def _cluster_ok(port: int) -> bool:
    try:
        info = SyncRedis(port=port, socket_timeout=1).execute_command("CLUSTER INFO")
    except Exception:  # noqa: BLE001 - not up yet
        return False
    if isinstance(info, dict):  # redis-py parses CLUSTER INFO
        return str(info.get("cluster_state")) == "ok"
    return "cluster_state:ok" in (info.decode() if isinstance(info, bytes) else str(info))


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh 3-master Redis Cluster on 127.0.0.1:7101-7103; the url of its first node."""
    root = tmp_path_factory.mktemp("redis-cluster")
    servers: list[subprocess.Popen[bytes]] = []
    try:
        for port in PORTS:
            data = root / str(port)
            data.mkdir()
            servers.append(
                subprocess.Popen(
                    [
                        REDIS_SERVER,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "5000",
                        "--dir",
                        str(data),
                        "--appendonly",
                        "yes",
                        "--appendfsync",
                        "everysec",
                        "--save",
                        "",
                        "--daemonize",
                        "no",
                        "--logfile",
                        str(data / "redis.log"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )  # fmt: skip
            )
        for port in PORTS:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    if SyncRedis(port=port, socket_timeout=1).ping():
                        break
                except Exception:  # noqa: BLE001 - not up yet
                    time.sleep(0.05)
        subprocess.run(
            [REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{p}" for p in PORTS),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not all(_cluster_ok(p) for p in PORTS):
            assert time.monotonic() < deadline, "the Redis Cluster did not come up"
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{PORTS[0]}/0"
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()


@dataclass
class ClusterSystem:
    """The product running on the Redis Cluster."""

    settings: config.Settings
    specs: list[processes.ProcessSpec] = field(default_factory=list)

    @property
    def gateway_url(self) -> str:
        """Base URL of the gateway."""
        return f"http://{self.settings.gateway_host}:{self.settings.gateway_port}"


@pytest.fixture(scope="module")
async def system(
    redis_cluster: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ClusterSystem]:
    """Every service, the gateway, the worker and the flusher, with REDIS_CLUSTER=on; the arq
    queue on the plain test Redis (db 15); fresh PostgreSQL and ClickHouse databases."""
    base = config.load()
    name = f"linkpulse_rc_{os.getpid()}"
    settings = isolated_settings(
        tmp_path_factory.mktemp("run"),
        database_url=base.database_url.rsplit("/", 1)[0] + f"/{name}",
        clickhouse_url=base.clickhouse_url.rsplit("/", 1)[0] + f"/{name}",
        clickhouse_http_port=base.clickhouse_http_port,
        redis_url=redis_cluster,
        redis_cluster=True,
        arq_redis_url="redis://127.0.0.1:6379/15",
        ingest_stream=f"lp:ingest:{name}",
        ingest_key_prefix=f"lp:{name}",
        flusher_max_wait_ms=20,
        auth_cache_seconds=5,
        snapshot_ttl_seconds=60,
    )
    devstack_clickhouse.ensure(replace(base, run_dir=ROOT / ".run"))
    await drop_databases(settings.database_url, settings.clickhouse_url)
    await migrate(settings.database_url, settings.clickhouse_url)
    env = process_env(
        settings,
        REDIS_CLUSTER="on",
        ARQ_REDIS_URL=settings.arq_url,
        ARQ_QUEUE=f"lp:{name}:arq:queue",
        FLUSHER_MAX_WAIT_MS="20",
        AUTH_CACHE_SECONDS="5",
        SNAPSHOT_TTL_SECONDS="60",
        INGEST_REQUIRE_DURABLE_REDIS="warn",
        WORKER_CRON="off",
    )
    running = ClusterSystem(settings)
    try:
        for component in components.COMPONENTS:
            spec = components.spec(settings, component)
            spec = replace(spec, env={**spec.env, **env})
            processes.start(spec)
            running.specs.append(spec)
        yield running
    finally:
        for spec in reversed(running.specs):
            processes.stop(spec)
        await drop_databases(settings.database_url, settings.clickhouse_url)


@pytest.fixture(scope="module")
async def pg(system: ClusterSystem) -> AsyncIterator[asyncpg.Pool]:
    """Pool on the test's PostgreSQL database."""
    pool = await asyncpg.create_pool(system.settings.database_url, min_size=1, max_size=2)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
async def http(system: ClusterSystem) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP client on the gateway."""
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        yield client


async def _tenant(pg: asyncpg.Pool, plan: str = "business") -> tuple[int, str, list[int]]:
    made = await create_tenant(pg, plan=plan)
    return made.workspace_id, made.key, made.link_ids


def _clicks(link_ids: list[int], first_id: int, n: int) -> list[protos.live_pb2.ClickEvent]:
    return [
        protos.live_pb2.ClickEvent(
            event_id=first_id + i,
            link_id=link_ids[i % len(link_ids)],
            timestamp=f"{DAY}T10:{(i // 60) % 60:02d}:{i % 60:02d}Z",
            visitor_id=f"v{i % 7}",
            country="DE",
        )
        for i in range(n)
    ]


async def _stored(settings: config.Settings, workspace_id: int) -> int:
    ch = ClickHouse.from_url(settings.clickhouse_url, pool_size=1)
    try:
        rows = await ch.fetch(
            "SELECT count() FROM clicks WHERE workspace_id = %(w)s", {"w": workspace_id}
        )
    finally:
        ch.close()
    return int(rows[0][0])


async def test_ingest_is_counted_exactly_once(system: ClusterSystem, pg, http) -> None:
    """Batches with client ids (one sent twice) and single tracked clicks, over workspaces of
    several partitions, all reach ClickHouse once."""
    made = [await _tenant(pg) for _ in range(3)]
    async with grpc.aio.insecure_channel(system.settings.live_addr) as channel:
        stub = protos.live_pb2_grpc.LiveServiceStub(channel)
        for _workspace_id, key, link_ids in made:
            metadata = (("authorization", f"Bearer {key}"),)
            events = _clicks(link_ids, 10_000, 300)
            first = await stub.Ingest(
                protos.live_pb2.IngestRequest(events=events), metadata=metadata
            )
            again = await stub.Ingest(
                protos.live_pb2.IngestRequest(events=events[200:] + _clicks(link_ids, 20_000, 50)),
                metadata=metadata,
            )
            assert (first.accepted, first.duplicates) == (300, 0)
            assert (again.accepted, again.duplicates) == (150, 100)
    for _workspace_id, key, link_ids in made:
        for _ in range(5):
            r = await http.post(
                "/api/track/click",
                json={"linkId": link_ids[0], "timestamp": f"{DAY}T11:00:00Z"},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert r.status_code == 200, r.text
    await wait_drained(system.settings, 60)
    for workspace_id, _key, _links in made:
        assert await _stored(system.settings, workspace_id) == 300 + 50 + 5


async def test_an_event_appears_on_the_live_feed(system: ClusterSystem, pg, http) -> None:
    workspace_id, key, link_ids = await _tenant(pg)
    headers = {"Authorization": f"Bearer {key}"}
    r = await http.post("/api/track/click", json={"linkId": link_ids[1]}, headers=headers)
    assert r.status_code == 200, r.text
    live = await http.get("/api/analytics/live", headers=headers)
    assert live.status_code == 200, live.text
    assert str(link_ids[1]) in live.text
    stats = await http.get("/api/analytics/live/stats", headers=headers)
    assert stats.status_code == 200, stats.text


async def test_a_lead_finds_its_click_in_redis(system: ClusterSystem, pg, http) -> None:
    """Attribution's look-ups (the click rows script, the customer hash) on the cluster."""
    _workspace_id, key, link_ids = await _tenant(pg)
    headers = {"Authorization": f"Bearer {key}"}
    click = await http.post("/api/track/click", json={"linkId": link_ids[0]}, headers=headers)
    assert click.status_code == 200, click.text
    click_id = int(click.json()["data"]["eventIds"][0])
    lead = await http.post(
        "/api/track/lead", json={"clickId": click_id, "customerId": "c-1"}, headers=headers
    )
    assert lead.status_code == 200, lead.text
    sale = await http.post(
        "/api/track/sale",
        json={"customerId": "c-1", "amount": 100, "currency": "USD"},
        headers=headers,
    )
    assert sale.status_code == 200, sale.text


async def test_a_repeated_read_is_a_cache_hit(system: ClusterSystem, pg, http) -> None:
    """A HIT, which spends from the bucket the service spent from (the free plan leases none)."""
    _workspace_id, key, _links = await _tenant(pg, plan="free")
    headers = {"Authorization": f"Bearer {key}"}
    path = "/api/analytics/workspace/overview"
    params = {"start": DAY, "end": DAY, "timezone": "UTC"}
    first = await http.get(path, params=params, headers=headers)
    assert first.status_code == 200, first.text
    assert first.headers["x-cache"] == "MISS"
    hit = await http.get(path, params=params, headers=headers)
    assert hit.status_code == 200 and hit.headers["x-cache"] == "HIT"
    assert int(hit.headers["x-ratelimit-remaining"]) < int(first.headers["x-ratelimit-remaining"])


async def test_the_plan_limit_answers_429(system: ClusterSystem, pg, http) -> None:
    _workspace_id, key, _links = await _tenant(pg, plan="free")
    headers = {"Authorization": f"Bearer {key}"}
    answers = []
    for _ in range(FREE_PER_MINUTE + 20):
        r = await http.get("/api/analytics/live", headers=headers)
        answers.append(r.status_code)
        if r.status_code == 429:
            break
    assert answers[-1] == 429 and answers.count(200) >= FREE_PER_MINUTE, answers
    assert r.json()["error"]["code"] == "rate_limited"


async def test_keys_spread_over_the_masters(system: ClusterSystem) -> None:
    """The partitions' streams are spread over the three masters (not one slot, one node)."""
    redis = create_redis(system.settings.redis_url, cluster=True)
    try:
        nodes = set()
        for n in range(system.settings.ingest_partitions):
            stream = f"{system.settings.ingest_stream}:{{p{n}}}"
            assert await redis.exists(stream)  # made by the flusher
            nodes.add(redis.get_node_from_key(stream).name)  # type: ignore[attr-defined]
        assert len(nodes) == 3
    finally:
        await redis.aclose()
