"""Tracing is nothing at all without an OTLP endpoint; with one, a job's span continues the trace
carried in its arguments and a lone store call starts none (exported to a receiver in the
test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

from opentelemetry import trace

from services.config import Settings
from services.telemetry import store_spans, tracing
from tests.otlp_collector import Collector


def test_without_an_endpoint_nothing_is_installed() -> None:
    settings = replace(Settings(), otel_exporter_otlp_endpoint="")
    assert tracing.configure("query", settings) is False
    assert not tracing.enabled()
    # The API's default: a proxy to nothing, no SDK provider, no processor, no exporter.
    assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
    assert tracing.client_interceptors() == [] and tracing.server_interceptors() == []
    assert tracing.carrier() == {}
    assert tracing.span("x") is tracing.NO_SPAN
    assert store_spans.clickhouse("select", "db") is tracing.NO_SPAN
    with tracing.continued("job", {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}) as s:
        assert s is None
    assert tracing.current_ids() == ("", "")


# Run in a process of its own: a TracerProvider is installed once per process.
_TRACED = textwrap.dedent(
    """
    import json, sys
    from opentelemetry import trace
    from services import config
    from services.telemetry import store_spans, tracing

    assert tracing.configure("worker", config.load())
    with tracing.span("request") as outer:
        carried = tracing.carrier()
        ids = tracing.current_ids()
    with tracing.continued("export job", carried, attributes={"linkpulse.job.id": "exp_1"}):
        with store_spans.clickhouse("select", "db", "127.0.0.1", 9000):
            pass
    with store_spans.clickhouse("select", "db"):  # a store call outside any request or job
        lone = tracing.current_ids()
    trace.get_tracer_provider().force_flush()
    print(json.dumps({"carried": carried, "ids": ids, "lone": lone}))
    """
)


def test_a_job_span_continues_the_carried_trace() -> None:
    collector = Collector().start()
    try:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        }
        done = subprocess.run(
            [sys.executable, "-c", _TRACED], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        printed = json.loads(done.stdout)
        trace_id, request_span = printed["ids"]
        spans = {s.name: s for s in collector.of_trace(trace_id)}
        assert set(spans) == {"request", "export job", "clickhouse select"}
        assert {s.service for s in spans.values()} == {"linkpulse-worker"}
        assert spans["request"].span_id == request_span
        assert spans["export job"].parent_id == request_span
        assert spans["export job"].attributes["linkpulse.job.id"] == "exp_1"
        store = spans["clickhouse select"]
        assert store.parent_id == spans["export job"].span_id
        assert store.attributes["db.system"] == "clickhouse"
        assert store.attributes["db.operation"] == "select"
        # A lone store call starts no trace of its own (nor is exported).
        assert collector.of_trace(printed["lone"][0]) == []
        assert {s.name for s in collector.spans} == set(spans)
    finally:
        collector.stop()
