"""The chaos suite's own isolated stack, fault helpers, and the faults × outcome recorder."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
import pytest

from services import protos
from services.config import Settings
from services.devstack import clickhouse_server as devstack_clickhouse
from services.devstack import components, processes
from services.protos import SERVICES
from services.stores.clickhouse import ClickHouse
from services.stores.migrate import migrate
from tests.chaos.report import Recorder
from tests.chaos.servers import PostgresCluster, RedisServer, postgres_bin
from tests.conftest import Tenant, create_tenant, wait_drained
from tests.services.devstack.helpers import isolated_settings, process_env

ROOT = Path(__file__).resolve().parents[2]
KNOWN = os.environ.get("CHAOS_KNOWN") == "1"
RECORDER = Recorder()
_STARTED = time.monotonic()

# Prompt recovery everywhere: the faults are short, the suite must be too.
COMMON_ENV = {
    "AUTH_CACHE_SECONDS": "1",
    "SNAPSHOT_TTL_SECONDS": "2",
    "FLUSHER_MAX_WAIT_MS": "50",
    "FLUSHER_CLAIM_IDLE_MS": "1000",
    "FLUSHER_BACKOFF_MAX_MS": "500",
    "EXPORT_STALLED_SECONDS": "3",
    "EXPORT_INLINE_ROWS": "1000",
    "GATEWAY_DEADLINE_SECONDS": "5",
    "WORKER_CRON": "off",
}
# Exports pause after each MB and batches after each item, so a kill lands mid-way.
PROCESS_ENV = {"worker": {"EXPORT_CHUNK_PAUSE_MS": "150", "BATCH_ITEM_PAUSE_MS": "100"}}


def pytest_configure(config: pytest.Config) -> None:
    """Register the suite's markers."""
    config.addinivalue_line("markers", "fault(component, fault): the fault a chaos test injects")
    config.addinivalue_line(
        "markers", "known_defect(reason): fails today on a known defect; runs with CHAOS_KNOWN=1"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the known-defect faults unless CHAOS_KNOWN=1."""
    for item in items:
        marker = item.get_closest_marker("known_defect")
        if marker is not None and not KNOWN:
            item.add_marker(pytest.mark.skip(reason=f"known defect: {marker.args[0]}"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Record each fault test's outcome for the table."""
    outcome = yield
    marker = item.get_closest_marker("fault")
    if marker is None:
        return
    report = outcome.get_result()
    record = RECORDER.begin(item.nodeid, *marker.args)
    if report.when == "call":
        record.seconds = call.duration
    if report.skipped and report.when in ("setup", "call"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        record.outcome = f"skipped ({reason.removeprefix('Skipped: ')})"
    elif report.failed:
        message = str(report.longrepr).strip().splitlines()
        last = next((line for line in message if line.startswith("E ")), "")
        why = f": {last[1:].strip()[:160]}" if last else ""
        record.outcome = f"FAILED in {report.when}{why}"
    elif report.when == "call" and report.passed:
        record.outcome = "pass"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the faults × outcome table; write it to CHAOS_REPORT when set."""
    if not RECORDER.outcomes:
        return
    terminalreporter.section("faults × outcome")
    terminalreporter.write_line(RECORDER.table())
    target = os.environ.get("CHAOS_REPORT")
    if target:
        path = Path(target) if Path(target).is_absolute() else ROOT / target
        RECORDER.write(path, time.monotonic() - _STARTED)
        terminalreporter.write_line(f"written to {path}")


@pytest.fixture
def note(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Add an observation to the running fault's row of the table."""
    marker = request.node.get_closest_marker("fault")
    args = marker.args if marker is not None else ("?", request.node.name)
    record = RECORDER.begin(request.node.nodeid, *args)
    return record.notes.append


# -- the stack ---------------------------------------------------------------------------------


@dataclass
class Stack:
    """The suite's own PostgreSQL, Redis, ClickHouse and linkpulse processes."""

    settings: Settings
    postgres: PostgresCluster
    redis: RedisServer
    secret: str
    specs: dict[str, processes.ProcessSpec] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        """Base URL of the gateway."""
        return components.gateway_url(self.settings)

    def spec(self, name: str, **env: str) -> processes.ProcessSpec:
        """How to run component name on the stack's settings, with extra env."""
        base = components.spec(self.settings, name)
        extra = {**COMMON_ENV, "SIGNING_KEY": self.secret, **PROCESS_ENV.get(name, {}), **env}
        return replace(base, env=process_env(self.settings, **extra))

    def start(self, name: str, **env: str) -> processes.ProcessSpec:
        """Start component name (with extra env) unless it runs; wait until it is ready."""
        spec = self.spec(name, **env)
        processes.start(spec)
        self.specs[name] = spec
        return spec

    def stop(self, name: str) -> None:
        """Stop component name cleanly."""
        processes.stop(self.specs[name])

    def pid(self, name: str) -> int:
        """Pid of running component name."""
        pid = processes.running_pid(self.specs[name])
        assert pid is not None, f"{name} is not running"
        return pid

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send sig (SIGKILL by default) to component name; after SIGKILL wait until it is gone."""
        pid = self.pid(name)
        os.kill(pid, sig)
        if sig == signal.SIGKILL:
            deadline = time.monotonic() + 10
            while processes.running_pid(self.specs[name]) is not None:
                assert time.monotonic() < deadline, f"{name} survived SIGKILL"
                time.sleep(0.05)

    def restart(self, name: str, **env: str) -> None:
        """SIGKILL component name and start it again."""
        self.kill(name)
        self.start(name, **env)

    def kill_clickhouse(self) -> None:
        """SIGKILL the stack's ClickHouse server."""
        pid = devstack_clickhouse.status(self.settings).pid
        assert pid is not None, "ClickHouse is not running"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while devstack_clickhouse.status(self.settings).pid is not None:
            assert time.monotonic() < deadline, "ClickHouse survived SIGKILL"
            time.sleep(0.1)

    def start_clickhouse(self) -> None:
        """Start the stack's ClickHouse server again (same data) and wait until it answers."""
        devstack_clickhouse.ensure(self.settings)

    def clickhouse(self) -> ClickHouse:
        """A new ClickHouse facade on the stack's database (close it after use)."""
        return ClickHouse.from_url(self.settings.clickhouse_url, pool_size=1)

    async def drained(self, seconds: float = 60.0) -> None:
        """Wait until the flusher has written every accepted event to ClickHouse."""
        await wait_drained(self.settings, seconds)

    def down(self) -> list[str]:
        """Components of the stack that are not running."""
        return [n for n, s in self.specs.items() if processes.running_pid(s) is None]


@pytest.fixture(scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """PostgreSQL cluster, Redis, ClickHouse and every linkpulse process, all the suite's own."""
    if postgres_bin() is None:
        pytest.skip("PostgreSQL server binaries (pg_ctl, initdb) are not installed")
    if devstack_clickhouse.find_server() is None:
        pytest.skip("clickhouse-server is not installed (`linkpulse stack clickhouse`)")
    root = Path(tmp_path_factory.mktemp("chaos"))
    # Outside pytest's private temp dir: the postgres user must reach the cluster's files.
    postgres = PostgresCluster(Path(tempfile.mkdtemp(prefix="linkpulse-chaos-pg-")))
    redis = RedisServer(root / "redis")
    settings = isolated_settings(root / "run", redis_url=redis.url)
    settings = replace(
        settings,
        database_url=postgres.url("linkpulse"),
        ingest_stream="lp:ingest:chaos",
        ingest_key_prefix="lp:chaos",
        worker_cron=False,
    )
    running = Stack(settings, postgres, redis, secrets.token_hex(32))
    try:
        postgres.create()
        postgres.start()
        redis.start()
        devstack_clickhouse.ensure(settings)
        await migrate(settings.database_url, settings.clickhouse_url)
        for name in (*SERVICES, "worker", "flusher", "gateway"):
            running.start(name)
        yield running
    finally:
        for spec in reversed(running.specs.values()):
            try:
                processes.stop(spec)
            except Exception:  # noqa: BLE001 - tear down the rest regardless
                pass
        devstack_clickhouse.stop(settings)
        redis.destroy()
        postgres.destroy()


@pytest.fixture
async def healthy(stack: Stack) -> AsyncIterator[Stack]:
    """The stack with every store and process up before and after the test."""
    await ensure_whole(stack)
    yield stack
    await ensure_whole(stack)


async def ensure_whole(stack: Stack) -> None:
    """Bring back whatever a failed test left down."""
    if stack.redis.proc is not None:
        stack.redis.proc.send_signal(signal.SIGCONT)
        if stack.redis.proc.poll() is not None:
            stack.redis.start()
    if not _port_open(stack.postgres.port):
        stack.postgres.start()
    stack.start_clickhouse()
    for name, spec in list(stack.specs.items()):
        if processes.running_pid(spec) is None:
            stack.start(name)


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP client on the stack's gateway (short timeout: a hang is a finding)."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15) as client:
        yield client


@pytest.fixture
def tenant(stack: Stack) -> Callable[..., Awaitable[Tenant]]:
    """Factory of fresh tenants on the stack's PostgreSQL."""

    async def make(links_count: int = 2) -> Tenant:
        conn = await asyncpg.connect(stack.settings.database_url)
        try:
            return await create_tenant(conn, links_count=links_count)
        finally:
            await conn.close()

    return make


# -- ingest with client event ids, and exact counts ------------------------------------------

DAY = "2026-03-02"


def clicks(t: Tenant, first_id: int, n: int) -> list[protos.live_pb2.ClickEvent]:
    """n clicks of tenant t with client event ids first_id…, all on DAY."""
    return [
        protos.live_pb2.ClickEvent(
            event_id=first_id + i,
            link_id=t.link_ids[i % len(t.link_ids)],
            timestamp=f"{DAY}T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z",
            visitor_id=f"v{i % 101}",
            country="DE",
        )
        for i in range(n)
    ]


@dataclass
class Sender:
    """Sends batches of events over gRPC Ingest until each is accepted, resending on failure."""

    address: str
    tenant: Tenant
    deadline: float = 3.0
    failures: dict[str, int] = field(default_factory=dict)

    async def send(self, events: list[protos.live_pb2.ClickEvent], give_up: float = 90.0) -> None:
        """Send events as one request, resending the same ids until one is acknowledged."""
        stop = time.monotonic() + give_up
        while True:
            try:
                async with grpc.aio.insecure_channel(self.address) as channel:
                    stub = protos.live_pb2_grpc.LiveServiceStub(channel)
                    reply = await stub.Ingest(
                        protos.live_pb2.IngestRequest(events=events),
                        metadata=self.tenant.metadata,
                        timeout=self.deadline,
                    )
                assert reply.accepted == len(events), reply
                return
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                assert code in RETRYABLE, f"{code.name}: {exc.details()}"
                self.failures[code.name] = self.failures.get(code.name, 0) + 1
                assert time.monotonic() < stop, f"not accepted in {give_up}s: {exc.details()}"
                await asyncio.sleep(0.2)

    async def send_all(
        self, events: list[protos.live_pb2.ClickEvent], per_request: int, pause: float = 0.0
    ) -> None:
        """Send events in requests of per_request, one after another, pause seconds apart."""
        for i in range(0, len(events), per_request):
            await self.send(events[i : i + per_request])
            await asyncio.sleep(pause)

    def summary(self) -> str:
        """The failures the sender met and resent after, e.g. 'resent after UNAVAILABLE×3'."""
        if not self.failures:
            return "no failed sends"
        return "resent after " + ", ".join(f"{k}×{v}" for k, v in sorted(self.failures.items()))


RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
}


async def stored(stack: Stack, workspace_id: int, seconds: float = 60.0) -> tuple[int, int]:
    """(count, distinct event ids) of the workspace's clicks, retried while ClickHouse is away."""
    deadline = time.monotonic() + seconds
    while True:
        ch = stack.clickhouse()
        try:
            rows = await ch.fetch(
                "SELECT count(), uniqExact(event_id) FROM clicks WHERE workspace_id = %(w)s",
                {"w": workspace_id},
            )
            return int(rows[0][0]), int(rows[0][1])
        except Exception:  # noqa: BLE001 - ClickHouse may still be starting
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
        finally:
            ch.close()


async def assert_exact(stack: Stack, t: Tenant, sent: int, note: Callable[[str], None]) -> None:
    """Once drained, ClickHouse holds each of the sent ids exactly once."""
    await stack.drained(90)
    count, distinct = await stored(stack, t.workspace_id)
    note(f"{sent} sent, {count} stored, {sent - distinct} lost, {count - distinct} doubled")
    assert (count, distinct) == (sent, sent), f"sent {sent}, stored {count} ({distinct} distinct)"


def assert_envelope(r: httpx.Response, allowed: tuple[int, ...] = (200, 503)) -> None:
    """Never a 500; an error is the envelope with a code and a message."""
    assert r.status_code != 500, r.text
    assert r.status_code in allowed, (r.status_code, r.text)
    if r.status_code >= 400:
        body = r.json()
        assert body["success"] is False, body
        assert body["error"]["code"] and body["error"]["message"], body


async def until(what: str, check: Callable[[], Awaitable[bool]], seconds: float = 60.0) -> float:
    """Wait until check() holds; the seconds it took."""
    began = time.monotonic()
    while not await check():
        assert time.monotonic() - began < seconds, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
    return time.monotonic() - began
