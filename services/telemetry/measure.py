"""Recording into the metrics of services.telemetry.metrics: the small calls the code paths make."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from clickhouse_driver import errors as ch_errors
from clickhouse_driver.errors import ErrorCodes

from services.telemetry import metrics
from services.telemetry.statements import statement_kind

# ClickHouse's own "the query ran too long" codes (as opposed to the socket timing out).
_CLICKHOUSE_TIMEOUT_CODES = frozenset({ErrorCodes.TIMEOUT_EXCEEDED, ErrorCodes.SOCKET_TIMEOUT})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def clickhouse_reason(exc: BaseException) -> str:
    """Why a ClickHouse call failed: timeout, unavailable, server (the query) or client."""
    chain = list(_chain(exc))
    for cause in chain:
        if isinstance(cause, ch_errors.SocketTimeoutError | TimeoutError):
            return "timeout"
        if isinstance(cause, ch_errors.ServerException) and cause.code in (
            _CLICKHOUSE_TIMEOUT_CODES
        ):
            return "timeout"
    # The facade raises StoreUnavailable (services.errors) for a node, shard or ZooKeeper gone.
    if type(exc).__name__ == "StoreUnavailable" or any(
        isinstance(cause, ch_errors.NetworkError | ConnectionError | EOFError) for cause in chain
    ):
        return "unavailable"
    if any(isinstance(cause, ch_errors.ServerException) for cause in chain):
        return "server"
    return "client"


@contextmanager
def clickhouse_call(kind: str) -> Iterator[None]:
    """Time a ClickHouse statement of kind; count it as an error (with its reason) if it raises."""
    start = time.perf_counter()
    try:
        yield
    except Exception as exc:
        metrics.CLICKHOUSE_ERRORS.labels(kind, clickhouse_reason(exc)).inc()
        raise
    finally:
        metrics.CLICKHOUSE_DURATION.labels(kind).observe(time.perf_counter() - start)


def postgres_query(record: Any) -> None:
    """asyncpg query logger (Connection.add_query_logger): the statement's time and failure."""
    kind = statement_kind(record.query)
    metrics.POSTGRES_DURATION.labels(kind).observe(record.elapsed)
    if record.exception is not None:
        metrics.POSTGRES_ERRORS.labels(kind).inc()


async def watch_postgres(connection: Any) -> None:
    """asyncpg pool `init`: record every statement of the new connection."""
    connection.add_query_logger(postgres_query)


# X-Cache values of the snapshot cache (gateway.cache) -> the result label.
_CACHE_RESULTS = {"HIT": "hit", "UPDATING": "hit", "MISS": "miss", "STALE": "stale"}


def snapshot_cache(x_cache: str | None) -> None:
    """Count a cacheable request by the X-Cache header it was answered with (none: a refusal
    before the cache decided, not counted)."""
    result = _CACHE_RESULTS.get(x_cache or "")
    if result is not None:
        metrics.SNAPSHOT_CACHE.labels(result).inc()


def snapshot_cache_error() -> None:
    """Count a snapshot cache operation Redis failed (the request is answered uncached)."""
    metrics.SNAPSHOT_CACHE.labels("error").inc()


def rate_limited(limit: str = "requests") -> None:
    """Count a request refused because the credential's limit is spent."""
    metrics.RATELIMIT_REFUSALS.labels(limit).inc()


def ingested(kind: str, appended: list[bool]) -> None:
    """Count events of kind handed to the stream: True appended, False a duplicate."""
    accepted = sum(appended)
    if accepted:
        metrics.INGEST_EVENTS.labels(kind, "accepted").inc(accepted)
    if len(appended) > accepted:
        metrics.INGEST_EVENTS.labels(kind, "duplicate").inc(len(appended) - accepted)


def rejected(kind: str, count: int = 1) -> None:
    """Count events of kind refused as invalid."""
    if count > 0:
        metrics.INGEST_EVENTS.labels(kind, "rejected").inc(count)


def job_state(kind: str, state: str) -> None:
    """Count a job of kind (export, batch) entering state."""
    metrics.JOBS.labels(kind, state).inc()


def job_finished(kind: str, state: str, seconds: float, rows: int = 0) -> None:
    """Count a job's run ending in state (done, failed) after seconds, having written rows."""
    metrics.JOBS.labels(kind, state).inc()
    metrics.JOB_DURATION.labels(kind, state).observe(seconds)
    if rows:
        metrics.JOB_ROWS.labels(kind).inc(rows)


@contextmanager
def websocket_open() -> Iterator[None]:
    """Count an open WebSocket feed for as long as the block runs."""
    metrics.WEBSOCKET_SUBSCRIBERS.inc()
    try:
        yield
    finally:
        metrics.WEBSOCKET_SUBSCRIBERS.dec()


def websocket_too_slow() -> None:
    """Count a feed closed because its client did not keep up."""
    metrics.WEBSOCKET_SLOW_CUTS.inc()


def audit_appended() -> None:
    """Count an entry appended to an audit log."""
    metrics.AUDIT_APPENDS.inc()


def audit_verified(ok: bool) -> None:
    """Count a verification of an audit chain by its result."""
    metrics.AUDIT_VERIFICATIONS.labels("ok" if ok else "broken").inc()


@contextmanager
def flush_attempt() -> Iterator[None]:
    """Count an attempt to write a batch that raises as a flush error."""
    try:
        yield
    except Exception:
        metrics.FLUSH_ERRORS.inc()
        raise


def flushed(events: int, seconds: float) -> None:
    """Record a batch of events written and acknowledged in seconds."""
    metrics.FLUSH_BATCH_EVENTS.observe(events)
    metrics.FLUSH_DURATION.observe(seconds)


def ingest_streams(length: int, pending: int, lag_seconds: float) -> None:
    """Set the ingestion stream gauges from one sample."""
    metrics.INGEST_STREAM_LENGTH.set(length)
    metrics.INGEST_STREAM_PENDING.set(pending)
    metrics.FLUSHER_LAG.set(lag_seconds)
