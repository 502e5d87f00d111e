"""The recording helpers: failure reasons, and the counters they move."""

from __future__ import annotations

import pytest
from clickhouse_driver import errors as ch_errors
from clickhouse_driver.errors import ErrorCodes
from prometheus_client import REGISTRY

from services.errors import StoreUnavailable
from services.telemetry import measure


def value(name: str, **labels: str) -> float:
    """A sample of the process's registry (0 when the series does not exist yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _wrapped(cause: BaseException, outer: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ch_errors.SocketTimeoutError("read"), "timeout"),
        (_wrapped(ch_errors.SocketTimeoutError("read"), StoreUnavailable("x")), "timeout"),
        (ch_errors.ServerException("too long", ErrorCodes.TIMEOUT_EXCEEDED), "timeout"),
        (_wrapped(ch_errors.NetworkError("refused"), StoreUnavailable("x")), "unavailable"),
        (
            _wrapped(
                ch_errors.ServerException("zk", ErrorCodes.NO_ZOOKEEPER), StoreUnavailable("x")
            ),
            "unavailable",
        ),
        (ConnectionRefusedError(), "unavailable"),
        (ch_errors.ServerException("Missing columns", 47), "server"),
        (ValueError("bad parameter"), "client"),
    ],
)
def test_clickhouse_failure_reasons(exc: BaseException, reason: str) -> None:
    assert measure.clickhouse_reason(exc) == reason


def test_clickhouse_call_times_and_counts_a_failure() -> None:
    count = value("linkpulse_clickhouse_query_duration_seconds_count", kind="optimize")
    errors = value("linkpulse_clickhouse_errors_total", kind="optimize", reason="server")
    with measure.clickhouse_call("optimize"):
        pass
    with pytest.raises(ch_errors.ServerException), measure.clickhouse_call("optimize"):
        raise ch_errors.ServerException("no such table", 60)
    assert value("linkpulse_clickhouse_query_duration_seconds_count", kind="optimize") == count + 2
    assert (
        value("linkpulse_clickhouse_errors_total", kind="optimize", reason="server") == errors + 1
    )


def test_ingested_counts_accepted_and_duplicates_rejected_counts_invalid() -> None:
    name = "linkpulse_ingest_events_total"
    before = {o: value(name, kind="sale", outcome=o) for o in ("accepted", "duplicate", "rejected")}
    measure.ingested("sale", [True, False, True, True])
    measure.rejected("sale", 3)
    measure.rejected("sale", 0)
    assert value(name, kind="sale", outcome="accepted") == before["accepted"] + 3
    assert value(name, kind="sale", outcome="duplicate") == before["duplicate"] + 1
    assert value(name, kind="sale", outcome="rejected") == before["rejected"] + 3


def test_snapshot_cache_results_follow_x_cache() -> None:
    name = "linkpulse_snapshot_cache_requests_total"
    before = {r: value(name, result=r) for r in ("hit", "miss", "stale", "error")}
    for header in ("HIT", "UPDATING", "MISS", "STALE", None, "bogus"):
        measure.snapshot_cache(header)
    measure.snapshot_cache_error()
    assert value(name, result="hit") == before["hit"] + 2
    assert value(name, result="miss") == before["miss"] + 1
    assert value(name, result="stale") == before["stale"] + 1
    assert value(name, result="error") == before["error"] + 1


def test_job_finished_records_state_duration_and_rows() -> None:
    count = value("linkpulse_job_duration_seconds_count", kind="batch", state="done")
    rows = value("linkpulse_job_rows_total", kind="batch")
    done = value("linkpulse_jobs_total", kind="batch", state="done")
    measure.job_finished("batch", "done", 1.5, rows=4)
    assert value("linkpulse_job_duration_seconds_count", kind="batch", state="done") == count + 1
    assert value("linkpulse_job_rows_total", kind="batch") == rows + 4
    assert value("linkpulse_jobs_total", kind="batch", state="done") == done + 1


def test_websocket_gauge_counts_open_feeds_even_when_one_fails() -> None:
    before = value("linkpulse_websocket_subscribers")
    with measure.websocket_open():
        assert value("linkpulse_websocket_subscribers") == before + 1
        with pytest.raises(RuntimeError), measure.websocket_open():
            raise RuntimeError("feed failed")
        assert value("linkpulse_websocket_subscribers") == before + 1
    assert value("linkpulse_websocket_subscribers") == before


def test_flush_attempt_counts_failures_only() -> None:
    before = value("linkpulse_flush_errors_total")
    with measure.flush_attempt():
        pass
    with pytest.raises(OSError), measure.flush_attempt():
        raise OSError("ClickHouse is down")
    assert value("linkpulse_flush_errors_total") == before + 1
