"""Ingestion on a durable Redis: the start-up check, and a Redis SIGKILL losing nothing.

Each test runs its own redis-server on a free port with its own live service and flusher (the
suite's shared Redis runs without AOF, which is why the suite's processes only warn).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import pytest

from services import protos
from services.auth import signing
from services.config import Settings
from services.devstack import components, processes
from services.devstack.failures import DevstackError
from services.stores.clickhouse import ClickHouse
from tests.conftest import wait_drained
from tests.ports import free_port
from tests.services.devstack.helpers import process_env
from tests.services.devstack.redis_server import OwnRedis

pytestmark = pytest.mark.skipif(not OwnRedis.available(), reason="redis-server is not installed")

N = 6000
FIRST_ID = 9_000_000


@dataclass
class Setup:
    """A test's own Redis and the processes it starts against it."""

    redis: OwnRedis
    settings: Settings
    secret: str
    specs: list[processes.ProcessSpec]

    def spec(self, name: str, label: str, **env: str) -> processes.ProcessSpec:
        """`linkpulse serve name` as label, on the own Redis, with extra env."""
        base = components.spec(self.settings, name)
        return replace(
            base,
            name=label,
            pid_path=self.settings.run_dir / "pids" / f"{label}.pid",
            log_path=self.settings.run_dir / "logs" / f"{label}.log",
            env=process_env(
                self.settings,
                SIGNING_KEY=self.secret,
                FLUSHER_MAX_WAIT_MS="50",
                FLUSHER_CLAIM_IDLE_MS="500",
                FLUSHER_BACKOFF_MAX_MS="500",
                AUTH_CACHE_SECONDS="1",
                **env,
            ),
        )

    def start(self, name: str, label: str, **env: str) -> processes.ProcessSpec:
        """Start it and remember to stop it."""
        spec = self.spec(name, label, **env)
        self.specs.append(spec)
        processes.start(spec)
        return spec


def _setup(system, tmp_path: Path, redis: OwnRedis) -> Iterator[Setup]:  # noqa: ANN001
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    settings = replace(
        system.settings,
        redis_url=redis.url,
        live_addr=f"127.0.0.1:{free_port()}",
        run_dir=tmp_path / "run",
        ingest_stream=f"lp:ingest:durable:{tag}",
        ingest_key_prefix=f"lp:durable:{tag}",
    )
    mine = Setup(redis, settings, signing.load_secret(system.settings).decode(), [])
    redis.start()
    try:
        yield mine
    finally:
        for spec in reversed(mine.specs):
            processes.stop(spec)
        redis.stop()


@pytest.fixture
def durable(system, tmp_path: Path) -> Iterator[Setup]:
    yield from _setup(system, tmp_path, OwnRedis(tmp_path / "redis", aof=True, fsync="always"))


@pytest.fixture
def volatile(system, tmp_path: Path) -> Iterator[Setup]:
    yield from _setup(system, tmp_path, OwnRedis(tmp_path / "redis", aof=False))


def test_refuse_mode_refuses_a_redis_without_aof(volatile: Setup) -> None:
    spec = volatile.spec("live", "live-refusing", INGEST_REQUIRE_DURABLE_REDIS="refuse")
    volatile.specs.append(spec)
    with pytest.raises(DevstackError, match="exited"):
        processes.start(spec)
    log = spec.log_path.read_text()
    assert "refusing to accept events" in log and "appendonly no" in log, log


def test_warn_mode_serves_a_redis_without_aof_and_says_so(volatile: Setup) -> None:
    spec = volatile.start("live", "live-warning", INGEST_REQUIRE_DURABLE_REDIS="warn")
    assert "ACKNOWLEDGED EVENTS MAY BE LOST" in spec.log_path.read_text()


def test_refuse_mode_accepts_a_redis_with_aof_always(durable: Setup) -> None:
    spec = durable.start("live", "live-durable", INGEST_REQUIRE_DURABLE_REDIS="refuse")
    assert "appendfsync always: nothing acknowledged is lost" in spec.log_path.read_text()


def _clicks(link_ids: list[int], start: int, n: int) -> list[protos.live_pb2.ClickEvent]:
    return [
        protos.live_pb2.ClickEvent(
            event_id=FIRST_ID + i,
            link_id=link_ids[i % len(link_ids)],
            timestamp=f"2026-11-03T{(i // 60) % 24:02d}:{i % 60:02d}:00Z",
            visitor_id=f"v{i % 89}",
            country="FR",
        )
        for i in range(start, start + n)
    ]


async def _send(settings: Settings, t, events, per_request: int = 1000) -> tuple[int, int]:  # noqa: ANN001
    """Ingest events (retrying while the live service reconnects); (accepted, duplicates)."""
    accepted = duplicates = 0
    async with grpc.aio.insecure_channel(settings.live_addr) as channel:
        stub = protos.live_pb2_grpc.LiveServiceStub(channel)
        for i in range(0, len(events), per_request):
            request = protos.live_pb2.IngestRequest(events=events[i : i + per_request])
            deadline = time.monotonic() + 30
            while True:
                try:
                    reply = await stub.Ingest(request, metadata=t.metadata)
                    break
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
            accepted += reply.accepted
            duplicates += reply.duplicates
    return accepted, duplicates


async def _count(ch: ClickHouse, workspace_id: int) -> int:
    rows = await ch.fetch(
        "SELECT count() FROM clicks WHERE workspace_id = %(w)s", {"w": workspace_id}
    )
    return int(rows[0][0])


async def test_redis_sigkill_before_the_flush_loses_and_doubles_nothing(durable: Setup, ch, tenant):
    t = await tenant()
    durable.start("live", "live", INGEST_REQUIRE_DURABLE_REDIS="refuse")
    # The flusher inserts its first batch, then stalls before acknowledging it: at the crash
    # one batch is in ClickHouse unacknowledged and the rest only in Redis.
    stalled = durable.start(
        "flusher", "flusher-a", FLUSHER_BATCH_SIZE="2000", FLUSHER_PAUSE_AFTER_INSERT_MS="600000"
    )
    events = _clicks(t.link_ids, 0, N)
    assert await _send(durable.settings, t, events[:1000]) == (1000, 0)
    deadline = time.monotonic() + 60
    while await _count(ch, t.workspace_id) < 1000:
        assert time.monotonic() < deadline, "the first batch was never inserted"
        await asyncio.sleep(0.1)
    assert await _send(durable.settings, t, events[1000:]) == (N - 1000, 0)

    durable.redis.kill()
    pid = processes.running_pid(stalled)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.5)
    assert await _count(ch, t.workspace_id) == 1000
    durable.redis.start()

    # Every id again, as a client that never saw its acknowledgements would send them.
    assert await _send(durable.settings, t, events) == (N, N)
    durable.start("flusher", "flusher-b", FLUSHER_BATCH_SIZE="1500")
    await wait_drained(durable.settings, 90)
    assert await _count(ch, t.workspace_id) == N
    distinct = await ch.fetch(
        "SELECT uniqExact(event_id) FROM clicks WHERE workspace_id = %(w)s", {"w": t.workspace_id}
    )
    assert int(distinct[0][0]) == N


async def test_live_and_flusher_ride_out_a_redis_restart(durable: Setup, ch, tenant):
    t = await tenant()
    live = durable.start("live", "live", INGEST_REQUIRE_DURABLE_REDIS="refuse")
    flusher = durable.start("flusher", "flusher")
    pids = [processes.running_pid(live), processes.running_pid(flusher)]
    events = _clicks(t.link_ids, 0, 400)
    assert await _send(durable.settings, t, events[:200]) == (200, 0)
    durable.redis.stop()
    await asyncio.sleep(3)
    durable.redis.start()
    assert await _send(durable.settings, t, events[200:]) == (200, 0)
    await wait_drained(durable.settings, 60)
    assert await _count(ch, t.workspace_id) == 400
    assert [processes.running_pid(live), processes.running_pid(flusher)] == pids
