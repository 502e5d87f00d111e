"""Every Prometheus metric of linkpulse, defined once (prometheus-client keeps them per process).

Names and labels are a contract with deploy/ (scrape config, alert rules, dashboard): change
them there too. A gauge's multiprocess_mode says how the gateway's worker processes' values
combine when PROMETHEUS_MULTIPROC_DIR is set (services.telemetry.exposition).
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

# In multiprocess mode prometheus-client opens a file in PROMETHEUS_MULTIPROC_DIR for each metric
# as it is created (below): the directory must exist by then.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

# Seconds: from a sub-millisecond cache hit to a minute-long query or export.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
# Seconds of a whole job (an export of millions of rows takes minutes).
JOB_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)
# Events per flushed batch (FLUSHER_BATCH_SIZE is 10,000 by default; a trickle makes small ones).
BATCH_BUCKETS = (1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 25000, 50000)

HTTP_REQUESTS = Counter(
    "linkpulse_http_requests",
    "HTTP requests answered by the gateway, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "linkpulse_http_request_duration_seconds",
    "Time from an HTTP request's arrival to the end of its response, by route template.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)

GRPC_REQUESTS = Counter(
    "linkpulse_grpc_requests",
    "gRPC calls served, by service, method and status code name.",
    ["service", "method", "code"],
)
GRPC_DURATION = Histogram(
    "linkpulse_grpc_request_duration_seconds",
    "Time a gRPC call took to serve (a streaming call: until its stream ended).",
    ["service", "method"],
    buckets=LATENCY_BUCKETS,
)

CLICKHOUSE_DURATION = Histogram(
    "linkpulse_clickhouse_query_duration_seconds",
    "Time of a ClickHouse statement over the native protocol, by statement kind.",
    ["kind"],
    buckets=LATENCY_BUCKETS,
)
CLICKHOUSE_ERRORS = Counter(
    "linkpulse_clickhouse_errors",
    "ClickHouse statements that failed, by statement kind and reason.",
    ["kind", "reason"],
)

POSTGRES_DURATION = Histogram(
    "linkpulse_postgres_query_duration_seconds",
    "Time of a PostgreSQL statement, by statement kind (its first keyword).",
    ["kind"],
    buckets=LATENCY_BUCKETS,
)
POSTGRES_ERRORS = Counter(
    "linkpulse_postgres_errors",
    "PostgreSQL statements that failed, by statement kind.",
    ["kind"],
)

SNAPSHOT_CACHE = Counter(
    "linkpulse_snapshot_cache_requests",
    "Cacheable requests by what the snapshot cache did: hit, miss, stale (served for a 503/504)"
    " or error (Redis failed; answered uncached).",
    ["result"],
)
RATELIMIT_REFUSALS = Counter(
    "linkpulse_ratelimit_refusals",
    "Requests refused (429) because the credential's rate limit was spent, by limit.",
    ["limit"],
)

INGEST_EVENTS = Counter(
    "linkpulse_ingest_events",
    "Ingested events by kind and outcome: accepted (in the stream), duplicate (a client event id"
    " seen before) or rejected (invalid).",
    ["kind", "outcome"],
)
INGEST_STREAM_LENGTH = Gauge(
    "linkpulse_ingest_stream_length",
    "Entries in the ingestion streams (every partition), acknowledged ones not yet trimmed"
    " included.",
    multiprocess_mode="max",
)
INGEST_STREAM_PENDING = Gauge(
    "linkpulse_ingest_stream_pending",
    "Stream entries read by a flusher and not yet acknowledged (being written).",
    multiprocess_mode="max",
)
FLUSHER_LAG = Gauge(
    "linkpulse_flusher_lag_seconds",
    "Age of the oldest accepted event not yet written to ClickHouse (0 when drained).",
    multiprocess_mode="max",
)
FLUSH_BATCH_EVENTS = Histogram(
    "linkpulse_flush_batch_events",
    "Events per batch the flusher wrote to ClickHouse.",
    buckets=BATCH_BUCKETS,
)
FLUSH_DURATION = Histogram(
    "linkpulse_flush_duration_seconds",
    "Time to write one batch to ClickHouse and acknowledge it (retries included).",
    buckets=LATENCY_BUCKETS,
)
FLUSH_ERRORS = Counter(
    "linkpulse_flush_errors",
    "Failed attempts to write a batch to ClickHouse (each is retried with backoff).",
)

JOBS = Counter(
    "linkpulse_jobs",
    "Export and batch jobs entering a state: queued, running (an attempt started), done, failed"
    " or cancelled.",
    ["kind", "state"],
)
JOB_DURATION = Histogram(
    "linkpulse_job_duration_seconds",
    "Time of a job's run, from its attempt's start to done or failed.",
    ["kind", "state"],
    buckets=JOB_BUCKETS,
)
JOB_ROWS = Counter(
    "linkpulse_job_rows",
    "Rows written by finished jobs (exports: file rows; batches: items answered).",
    ["kind"],
)

WEBSOCKET_SUBSCRIBERS = Gauge(
    "linkpulse_websocket_subscribers",
    "Open WebSocket feeds.",
    multiprocess_mode="livesum",
)
WEBSOCKET_SLOW_CUTS = Counter(
    "linkpulse_websocket_slow_consumer_cuts",
    "WebSocket feeds closed (4008) because the client did not read fast enough.",
)

AUDIT_APPENDS = Counter(
    "linkpulse_audit_appends",
    "Entries appended to the audit logs.",
)
AUDIT_VERIFICATIONS = Counter(
    "linkpulse_audit_verifications",
    "Audit chain verifications by result: ok or broken.",
    ["result"],
)

BUILD_INFO = Gauge(
    "linkpulse_build_info",
    "1, labelled with the running version and the component of the process.",
    ["version", "component"],
    multiprocess_mode="max",
)
