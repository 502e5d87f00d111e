"""Readiness of a process's dependencies: do its stores answer, are their migrations current.

Every check is bounded by a timeout, and a report is reused for an interval, so however often
probes ask, the stores are asked at most once per interval. A dependency that is not required
(the query service's ClickHouse: it answers whole days from PostgreSQL without it) makes the
process `degraded` when it fails, not `not_ready`. A migration check runs only when its store
answered; otherwise it is `unknown` (the store's own check already fails).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from clickhouse_driver import errors as ch_errors
from redis.asyncio import Redis

from services.stores.clickhouse import ClickHouse
from services.stores.cluster import local_database
from services.stores.migration_files import load
from services.stores.node_lease import LeasedIds

OK = "ok"
DOWN = "down"
PENDING = "pending"
UNKNOWN = "unknown"

READY = "ready"
DEGRADED = "degraded"
NOT_READY = "not_ready"

_FAILING = frozenset({DOWN, PENDING})
_DETAIL_CHARS = 300


@dataclass(frozen=True)
class Outcome:
    """What one probe found: a status (ok, down, pending) and a human-readable detail."""

    status: str
    detail: str = ""


Probe = Callable[[], Awaitable[Outcome]]


@dataclass(frozen=True)
class Dependency:
    """A named check; after names the dependency that must be ok before this one runs."""

    name: str
    probe: Probe
    required: bool = True
    after: str | None = None


@dataclass(frozen=True)
class Result:
    """The outcome of one dependency's check."""

    name: str
    status: str
    detail: str
    required: bool
    milliseconds: float

    @property
    def failing(self) -> bool:
        """True when the dependency is down or behind."""
        return self.status in _FAILING

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the result."""
        found: dict[str, Any] = {"status": self.status, "required": self.required}
        if self.detail:
            found["detail"] = self.detail
        found["ms"] = round(self.milliseconds, 1)
        return found


@dataclass(frozen=True)
class Report:
    """Every dependency's result and when (monotonic seconds) they were checked."""

    results: tuple[Result, ...]
    checked_at: float

    @property
    def status(self) -> str:
        """ready, degraded (an optional dependency fails) or not_ready."""
        failing = [r for r in self.results if r.failing]
        if any(r.required for r in failing):
            return NOT_READY
        return DEGRADED if failing else READY

    @property
    def ready(self) -> bool:
        """True when the process can do its job (ready or degraded)."""
        return self.status != NOT_READY

    def summary(self) -> str:
        """One line: the status and what fails."""
        failing = [f"{r.name} {r.status} ({r.detail})" for r in self.results if r.failing]
        return f"{self.status}: {'; '.join(failing)}" if failing else self.status

    def to_dict(self, age_seconds: float = 0.0) -> dict[str, Any]:
        """The JSON form of the report, checked age_seconds ago."""
        return {
            "status": self.status,
            "checks": {r.name: r.to_dict() for r in self.results},
            "ageSeconds": round(age_seconds, 3),
        }


class Readiness:
    """The dependencies of one process, checked at most once per interval."""

    def __init__(
        self,
        dependencies: Sequence[Dependency],
        timeout: float,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dependencies = tuple(dependencies)
        self._timeout = timeout
        self._interval = interval
        self._clock = clock
        self._last: Report | None = None
        self._lock = asyncio.Lock()

    async def report(self) -> Report:
        """The last report when younger than the interval, else a new one."""
        last = self._last
        if last is not None and self._clock() - last.checked_at < self._interval:
            return last
        async with self._lock:  # one check at a time; those waiting get its report
            last = self._last
            if last is not None and self._clock() - last.checked_at < self._interval:
                return last
            return await self._check()

    async def refresh(self) -> Report:
        """Check every dependency now."""
        async with self._lock:
            return await self._check()

    def age(self, report: Report) -> float:
        """Seconds since report was made."""
        return max(0.0, self._clock() - report.checked_at)

    async def _check(self) -> Report:
        done: dict[str, Result] = {}
        pending = list(self.dependencies)
        while pending:
            # The dependencies whose prerequisite is checked (or that have none) run together.
            wave = [d for d in pending if d.after is None or d.after in done]
            if not wave:
                raise ValueError(f"unknown prerequisites in {[d.after for d in pending]}")
            results = await asyncio.gather(*(self._run(d, done) for d in wave))
            done.update((r.name, r) for r in results)
            pending = [d for d in pending if d.name not in done]
        report = Report(tuple(done[d.name] for d in self.dependencies), self._clock())
        self._last = report
        return report

    async def _run(self, dependency: Dependency, done: dict[str, Result]) -> Result:
        started = time.perf_counter()
        before = done.get(dependency.after) if dependency.after else None
        if before is not None and before.status != OK:
            outcome = Outcome(UNKNOWN, f"{before.name} is {before.status}")
        else:
            try:
                async with asyncio.timeout(self._timeout):
                    outcome = await dependency.probe()
            except TimeoutError:
                outcome = Outcome(DOWN, f"no answer in {self._timeout:g}s")
            except Exception as exc:  # noqa: BLE001 - any failure of a probe means down
                outcome = Outcome(DOWN, _describe(exc))
        return Result(
            dependency.name,
            outcome.status,
            outcome.detail,
            dependency.required,
            (time.perf_counter() - started) * 1000,
        )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    found = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return found[:_DETAIL_CHARS]


def postgres_answers(pool: asyncpg.Pool) -> Probe:
    """Probe: PostgreSQL answers a query."""

    async def probe() -> Outcome:
        await pool.fetchval("SELECT 1")
        return Outcome(OK)

    return probe


def redis_answers(redis: Redis) -> Probe:
    """Probe: Redis answers PING."""

    async def probe() -> Outcome:
        await redis.ping()
        return Outcome(OK)

    return probe


def clickhouse_answers(ch: ClickHouse) -> Probe:
    """Probe: ClickHouse answers a query (on a cluster, an entry node: the client fails over)."""

    async def probe() -> Outcome:
        await ch.fetch("SELECT 1")
        return Outcome(OK)

    return probe


@functools.cache
def migration_files(store: str) -> tuple[tuple[int, str], ...]:
    """(version, name) of every migration file of store, read once per process."""
    return tuple((m.version, m.name) for m in load(store))


def node_lease_held(ids: LeasedIds) -> Probe:
    """Probe: the process holds a live event-id node lease (without one it mints nothing)."""

    async def probe() -> Outcome:
        if ids.minting:
            return Outcome(OK, f"node {ids.node_id}")
        return Outcome(DOWN, "no event-id node lease: events are refused until one is leased")

    return probe


def compare(store: str, applied: set[int]) -> Outcome:
    """ok when every migration file of store is in applied, else pending naming those missing."""
    missing = [name for version, name in migration_files(store) if version not in applied]
    if not missing:
        return Outcome(OK)
    names = ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "")
    return Outcome(PENDING, f"{len(missing)} not applied: {names}")


def postgres_migrations(pool: asyncpg.Pool) -> Probe:
    """Probe: every PostgreSQL migration file is applied."""

    async def probe() -> Outcome:
        try:
            rows = await pool.fetch("SELECT version FROM schema_migrations")
        except asyncpg.UndefinedTableError:
            rows = []
        return compare("postgres", {int(row["version"]) for row in rows})

    return probe


def clickhouse_migrations(ch: ClickHouse) -> Probe:
    """Probe: every ClickHouse migration file is applied (on a cluster, as recorded on the entry
    node that answers, in the database of its local tables)."""
    table = "schema_migrations"
    if ch.target.cluster:
        table = f"{local_database(ch.target.database)}.{table}"

    async def probe() -> Outcome:
        try:
            rows = await ch.fetch(f"SELECT version FROM {table}")
        except ch_errors.ServerException as exc:
            if exc.code not in (ch_errors.ErrorCodes.UNKNOWN_TABLE, _UNKNOWN_DATABASE):
                raise
            rows = []
        return compare("clickhouse", {int(row[0]) for row in rows})

    return probe


_UNKNOWN_DATABASE = 81


def store_dependencies(
    *,
    postgres: asyncpg.Pool | None = None,
    redis: Redis | None = None,
    clickhouse: ClickHouse | None = None,
    clickhouse_required: bool = True,
) -> list[Dependency]:
    """The checks of the stores given: each answers, and PostgreSQL's and ClickHouse's
    migrations are current."""
    found: list[Dependency] = []
    if postgres is not None:
        found.append(Dependency("postgres", postgres_answers(postgres)))
        found.append(
            Dependency("postgres_migrations", postgres_migrations(postgres), after="postgres")
        )
    if redis is not None:
        found.append(Dependency("redis", redis_answers(redis)))
    if clickhouse is not None:
        found.append(
            Dependency("clickhouse", clickhouse_answers(clickhouse), required=clickhouse_required)
        )
        # Behind migrations fail queries even when ClickHouse answers: always required.
        found.append(
            Dependency(
                "clickhouse_migrations", clickhouse_migrations(clickhouse), after="clickhouse"
            )
        )
    return found
