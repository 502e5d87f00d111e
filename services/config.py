"""Settings of every linkpulse process, read from the environment with local defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Values of CLICKHOUSE_SHARDING (see services/stores/cluster.py for the keys they stand for).
CLICKHOUSE_SHARDINGS = ("workspace", "event")
LOG_FORMATS = ("json", "text")
# Default Prometheus ports of the processes that serve no HTTP of their own.
METRICS_PORTS = {
    "query": 9471,
    "live": 9472,
    "export": 9473,
    "audit": 9474,
    "worker": 9475,
    "flusher": 9476,
}


def env_str(name: str, default: str) -> str:
    """Environment variable name, or default when unset or empty."""
    return os.environ.get(name) or default


def env_int(name: str, default: int) -> int:
    """Integer environment variable name, or default when unset or empty."""
    raw = os.environ.get(name)
    return int(raw) if raw else default


def env_ints(name: str, default: int) -> tuple[int, ...]:
    """Comma-separated integers of environment variable name, or (default,) when unset or empty."""
    raw = os.environ.get(name)
    found = tuple(int(part) for part in raw.split(",") if part.strip()) if raw else ()
    return found or (default,)


def _listed(values: tuple[int, ...]) -> tuple[int, ...]:
    return values if len(values) > 1 else ()


def env_float(name: str, default: float) -> float:
    """Float environment variable name, or default when unset or empty."""
    raw = os.environ.get(name)
    return float(raw) if raw else default


@dataclass(frozen=True)
class Settings:
    """Addresses, credentials and tunables; every field has an environment variable."""

    database_url: str = field(
        default_factory=lambda: env_str(
            "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/linkpulse"
        )
    )
    redis_url: str = field(default_factory=lambda: env_str("REDIS_URL", "redis://127.0.0.1:6379/0"))
    clickhouse_url: str = field(
        default_factory=lambda: env_str(
            "CLICKHOUSE_URL", "clickhouse://default@127.0.0.1:9000/linkpulse"
        )
    )
    # ClickHouse's HTTP port (exports streamed out, ingested rows posted in): one port for every
    # host of CLICKHOUSE_URL, or a comma-separated list, one per host in the URL's order (its
    # host, then alt_hosts), for nodes that share a machine. clickhouse_http_port is the first;
    # clickhouse_http_ports holds the list when there is one, else is empty.
    clickhouse_http_port: int = field(
        default_factory=lambda: env_ints("CLICKHOUSE_HTTP_PORT", 8123)[0]
    )
    clickhouse_http_ports: tuple[int, ...] = field(
        default_factory=lambda: _listed(env_ints("CLICKHOUSE_HTTP_PORT", 8123))
    )
    # ClickHouse cluster: the cluster's name in the servers' <remote_servers> (empty: one server,
    # no Distributed tables) and how the Distributed tables spread rows over its shards
    # (`workspace`: a tenant on one shard; `event`: one workspace's events over every shard).
    clickhouse_cluster: str = field(default_factory=lambda: env_str("CLICKHOUSE_CLUSTER", ""))
    clickhouse_sharding: str = field(
        default_factory=lambda: env_str("CLICKHOUSE_SHARDING", "workspace")
    )
    query_addr: str = field(default_factory=lambda: env_str("QUERY_GRPC_ADDR", "127.0.0.1:50051"))
    live_addr: str = field(default_factory=lambda: env_str("LIVE_GRPC_ADDR", "127.0.0.1:50052"))
    export_addr: str = field(default_factory=lambda: env_str("EXPORT_GRPC_ADDR", "127.0.0.1:50053"))
    audit_addr: str = field(default_factory=lambda: env_str("AUDIT_GRPC_ADDR", "127.0.0.1:50054"))
    gateway_host: str = field(default_factory=lambda: env_str("GATEWAY_HOST", "127.0.0.1"))
    gateway_port: int = field(default_factory=lambda: env_int("GATEWAY_PORT", 8080))
    # Gateway: deadline of each unary backend call; largest request body (larger: 413) and
    # query string (longer: 400); deadline of each backend check of /healthz; seconds open
    # requests get on shutdown; WebSocket heartbeat interval (0: none) and send-queue bound.
    gateway_deadline_seconds: float = field(
        default_factory=lambda: env_float("GATEWAY_DEADLINE_SECONDS", 30.0)
    )
    gateway_max_body_bytes: int = field(
        default_factory=lambda: env_int("GATEWAY_MAX_BODY_BYTES", 1 << 20)
    )
    gateway_max_query_bytes: int = field(
        default_factory=lambda: env_int("GATEWAY_MAX_QUERY_BYTES", 8 << 10)
    )
    gateway_health_timeout_seconds: float = field(
        default_factory=lambda: env_float("GATEWAY_HEALTH_TIMEOUT_SECONDS", 1.0)
    )
    gateway_shutdown_grace_seconds: float = field(
        default_factory=lambda: env_float("GATEWAY_SHUTDOWN_GRACE_SECONDS", 10.0)
    )
    gateway_ws_heartbeat_seconds: float = field(
        default_factory=lambda: env_float("GATEWAY_WS_HEARTBEAT_SECONDS", 15.0)
    )
    gateway_ws_send_queue: int = field(
        default_factory=lambda: env_int("GATEWAY_WS_SEND_QUEUE", 1000)
    )
    # Gateway under load: HTTP worker processes sharing the port (1: the gateway alone, in this
    # process); seconds between the background backend checks whose last result /healthz serves;
    # seconds past SNAPSHOT_TTL_SECONDS a snapshot is still served while one request refreshes it
    # (stale-while-revalidate; 0: a miss); milliseconds one gateway holds the Redis lock of a
    # snapshot it computes (copies wait for it that long, then compute themselves).
    gateway_workers: int = field(default_factory=lambda: env_int("GATEWAY_WORKERS", 1))
    # uvicorn's access log, a line per request (GATEWAY_ACCESS_LOG=off: none, errors still are).
    gateway_access_log: bool = field(
        default_factory=lambda: (
            env_str("GATEWAY_ACCESS_LOG", "on").lower() not in ("0", "off", "false", "no")
        )
    )
    gateway_health_interval_seconds: float = field(
        default_factory=lambda: env_float("GATEWAY_HEALTH_INTERVAL_SECONDS", 1.0)
    )
    # Answers of at least GATEWAY_GZIP_MIN_BYTES are gzip-compressed for clients that accept it
    # (0: never). Browsers on the origins of GATEWAY_CORS_ORIGINS (comma-separated, `*` for
    # any; empty, the default: no CORS headers) may call the API; preflights are cached for
    # GATEWAY_CORS_MAX_AGE_SECONDS.
    gateway_gzip_min_bytes: int = field(
        default_factory=lambda: env_int("GATEWAY_GZIP_MIN_BYTES", 1024)
    )
    gateway_cors_origins: tuple[str, ...] = field(
        default_factory=lambda: tuple(
            o.strip() for o in env_str("GATEWAY_CORS_ORIGINS", "").split(",") if o.strip()
        )
    )
    gateway_cors_max_age_seconds: int = field(
        default_factory=lambda: env_int("GATEWAY_CORS_MAX_AGE_SECONDS", 600)
    )
    snapshot_revalidate_seconds: int = field(
        default_factory=lambda: env_int("SNAPSHOT_REVALIDATE_SECONDS", 30)
    )
    snapshot_lock_ms: int = field(default_factory=lambda: env_int("SNAPSHOT_LOCK_MS", 5000))
    # Milliseconds a gateway answers a fresh snapshot read of a credential without a rate limit
    # from its own memory (never past the memo or the TTL; 0: every read goes to Redis).
    snapshot_hot_ms: int = field(default_factory=lambda: env_int("SNAPSHOT_HOT_MS", 1000))
    # Token leases of busy rate-limited credentials (gateway.token_lease): a credential read
    # at least SNAPSHOT_LEASE_BUSY_READS times within a lease's life takes up to
    # SNAPSHOT_LEASE_MAX_TOKENS of its bucket (and at most SNAPSHOT_LEASE_SHARE of its per-minute
    # capacity) in one Redis call, spent by reads answered from memory; a lease lives
    # SNAPSHOT_LEASE_MS (never past SNAPSHOT_HOT_MS), its unspent tokens are lost.
    # SNAPSHOT_LEASE_MAX_TOKENS=1 disables leasing (one call per read).
    snapshot_lease_ms: int = field(default_factory=lambda: env_int("SNAPSHOT_LEASE_MS", 500))
    snapshot_lease_max_tokens: int = field(
        default_factory=lambda: env_int("SNAPSHOT_LEASE_MAX_TOKENS", 64)
    )
    snapshot_lease_share: float = field(
        default_factory=lambda: env_float("SNAPSHOT_LEASE_SHARE", 0.01)
    )
    snapshot_lease_busy_reads: int = field(
        default_factory=lambda: env_int("SNAPSHOT_LEASE_BUSY_READS", 8)
    )
    # Seconds a snapshot-cache round trip to Redis may take before the cache is skipped for a
    # second (a loaded event loop alone can delay a reply by tens of milliseconds).
    snapshot_timeout_seconds: float = field(
        default_factory=lambda: env_float("SNAPSHOT_TIMEOUT_SECONDS", 0.5)
    )
    # Where the dev stack keeps ClickHouse data, logs and pid files.
    run_dir: Path = field(
        default_factory=lambda: Path(env_str("LINKPULSE_RUN_DIR", str(ROOT / ".run")))
    )
    # Seconds an authenticated token is trusted before it is looked up again.
    auth_cache_seconds: float = field(default_factory=lambda: env_float("AUTH_CACHE_SECONDS", 5.0))
    # The gateway answers cacheable GET routes from Redis snapshots (SNAPSHOT_CACHE=off disables).
    snapshot_cache: bool = field(
        default_factory=lambda: (
            env_str("SNAPSHOT_CACHE", "on").lower() not in ("0", "off", "false", "no")
        )
    )
    # Seconds a snapshot is served; relative windows (`days=N`) may be this much behind "now".
    snapshot_ttl_seconds: int = field(default_factory=lambda: env_int("SNAPSHOT_TTL_SECONDS", 60))
    # Seconds a snapshot is kept past its TTL, served only (as STALE) when the service answers a
    # cacheable route 503/504.
    snapshot_stale_seconds: int = field(
        default_factory=lambda: env_int("SNAPSHOT_STALE_SECONDS", 3600)
    )
    # Largest `days` accepted before the plan's cap applies.
    max_days: int = field(default_factory=lambda: env_int("MAX_DAYS", 3650))
    max_ingest_batch: int = field(default_factory=lambda: env_int("MAX_INGEST_BATCH", 5000))
    # Durable ingestion: the name of the Redis Streams accepted events go to (one per partition,
    # `<INGEST_STREAM>:{pN}`; the bare name is the single stream of earlier versions, drained by
    # the flushers), and the prefix of the ingestion keys (dedup markers, attribution caches).
    ingest_stream: str = field(default_factory=lambda: env_str("INGEST_STREAM", "lp:ingest"))
    ingest_key_prefix: str = field(default_factory=lambda: env_str("INGEST_KEY_PREFIX", "lp"))
    # How long a client event id is remembered as accepted (duplicates within it count once).
    ingest_dedup_seconds: int = field(
        default_factory=lambda: env_int("INGEST_DEDUP_SECONDS", 86400)
    )
    # How long a click's dimensions stay in Redis for lead attribution (then ClickHouse answers).
    click_cache_seconds: int = field(default_factory=lambda: env_int("CLICK_CACHE_SECONDS", 172800))
    # The flusher (stream -> ClickHouse): consumer group, batch bounds, crash recovery, retries.
    flusher_group: str = field(default_factory=lambda: env_str("FLUSHER_GROUP", "flusher"))
    flusher_batch_size: int = field(default_factory=lambda: env_int("FLUSHER_BATCH_SIZE", 5000))
    flusher_max_wait_ms: int = field(default_factory=lambda: env_int("FLUSHER_MAX_WAIT_MS", 500))
    # Batches of new entries the flusher writes to ClickHouse at once (reading the next meanwhile).
    flusher_inserts: int = field(default_factory=lambda: env_int("FLUSHER_INSERTS", 3))
    # Entries pending this long on another consumer are taken over (that consumer crashed).
    flusher_claim_idle_ms: int = field(
        default_factory=lambda: env_int("FLUSHER_CLAIM_IDLE_MS", 60000)
    )
    flusher_backoff_max_ms: int = field(
        default_factory=lambda: env_int("FLUSHER_BACKOFF_MAX_MS", 10000)
    )
    # Test hook: sleep this long between a batch's insert and its acknowledgement.
    flusher_pause_after_insert_ms: int = field(
        default_factory=lambda: env_int("FLUSHER_PAUSE_AFTER_INSERT_MS", 0)
    )
    # Secret of signed tokens (live-feed and embed tokens, download links); when unset, a
    # random one is created in the run directory and shared by the processes of this machine.
    signing_key: str = field(default_factory=lambda: env_str("SIGNING_KEY", ""))
    # Key of the visitor-id hash (services.live.visitors); when unset, derived from the signing
    # secret. Changing it (or, while it is unset, the signing secret) changes every new visitor id.
    visitor_id_key: str = field(default_factory=lambda: env_str("VISITOR_ID_KEY", ""))
    # Exports: where files are written (default RUN_DIR/exports), how long they are kept, how
    # long a download link is valid, the row count above which GET /export answers 202 with a
    # job instead of the rows, and the arq timeout of one export run.
    export_dir: str = field(default_factory=lambda: env_str("EXPORT_DIR", ""))
    export_retention_hours: float = field(
        default_factory=lambda: env_float("EXPORT_RETENTION_HOURS", 24.0)
    )
    export_link_ttl_seconds: int = field(
        default_factory=lambda: env_int("EXPORT_LINK_TTL_SECONDS", 3600)
    )
    export_inline_rows: int = field(default_factory=lambda: env_int("EXPORT_INLINE_ROWS", 10000))
    export_timeout_seconds: int = field(
        default_factory=lambda: env_int("EXPORT_TIMEOUT_SECONDS", 3600)
    )
    # A running export whose worker has not reported for this long is taken over by another run.
    export_stalled_seconds: float = field(
        default_factory=lambda: env_float("EXPORT_STALLED_SECONDS", 30.0)
    )
    # Test hook: the worker sleeps this long after each chunk of an export (to watch progress).
    export_chunk_pause_ms: int = field(default_factory=lambda: env_int("EXPORT_CHUNK_PAUSE_MS", 0))
    # Test hook: the worker sleeps this long after each item of a batch (to stop it mid-way).
    batch_item_pause_ms: int = field(default_factory=lambda: env_int("BATCH_ITEM_PAUSE_MS", 0))
    # Batch queries: most items per batch, and how long `wait` holds the answer for the result.
    batch_max_items: int = field(default_factory=lambda: env_int("BATCH_MAX_ITEMS", 50))
    batch_wait_seconds: float = field(default_factory=lambda: env_float("BATCH_WAIT_SECONDS", 10.0))
    # arq queue of this deployment's jobs; derived from INGEST_KEY_PREFIX when unset, so
    # deployments (and test sessions) sharing a Redis db never take each other's jobs.
    arq_queue: str = field(default_factory=lambda: env_str("ARQ_QUEUE", ""))
    # Periodic worker jobs (rollups, clean-up); WORKER_CRON=off runs only queued jobs.
    worker_cron: bool = field(
        default_factory=lambda: (
            env_str("WORKER_CRON", "on").lower() not in ("0", "off", "false", "no")
        )
    )
    # The arq worker starts again after a failure (Redis down) with capped exponential backoff.
    worker_backoff_max_ms: int = field(
        default_factory=lambda: env_int("WORKER_BACKOFF_MAX_MS", 10000)
    )
    # What the live service does at start when Redis could lose acknowledged events (no AOF, or
    # AOF without a bounded fsync): refuse (exit non-zero), warn (log loudly, serve) or off.
    ingest_require_durable_redis: str = field(
        default_factory=lambda: env_str("INGEST_REQUIRE_DURABLE_REDIS", "refuse").lower()
    )
    # Redis Cluster: REDIS_CLUSTER=on makes every Redis client a cluster client (REDIS_URL names
    # one node); the arq queue needs a plain Redis (multi-key commands), ARQ_REDIS_URL (default
    # REDIS_URL). Workspaces' Redis keys are grouped into INGEST_PARTITIONS hash-tagged
    # partitions (one ingest stream each); change it only with the ingest streams drained.
    redis_cluster: bool = field(
        default_factory=lambda: (
            env_str("REDIS_CLUSTER", "off").lower() in ("1", "on", "true", "yes")
        )
    )
    arq_redis_url: str = field(default_factory=lambda: env_str("ARQ_REDIS_URL", ""))
    ingest_partitions: int = field(default_factory=lambda: env_int("INGEST_PARTITIONS", 16))
    # N copies and TLS.
    # Id of this process in event ids (services/ids.py, 0..255; 31 is the demo loader's): when
    # unset, a free one is leased from Redis at start (services/stores/node_lease.py); when set,
    # start-up is refused while another live process holds it. A lease lives
    # NODE_LEASE_TTL_SECONDS unless renewed (every third of it); a process that could not renew
    # in time stops minting ids until it holds a lease again.
    node_id: int | None = field(
        default_factory=lambda: (
            int(os.environ["LINKPULSE_NODE_ID"]) if os.environ.get("LINKPULSE_NODE_ID") else None
        )
    )
    node_lease_ttl_seconds: float = field(
        default_factory=lambda: env_float("NODE_LEASE_TTL_SECONDS", 30.0)
    )
    # Where this gRPC service process listens (host:port); when unset, on its service's address
    # (QUERY_GRPC_ADDR etc.), which must then be a single address. A service address may list
    # several copies (`10.0.0.1:50051,10.0.0.2:50051`) or name one DNS name resolving to all of
    # them; clients spread calls over them (gRPC round_robin).
    grpc_listen_addr: str = field(default_factory=lambda: env_str("GRPC_LISTEN_ADDR", ""))
    # TLS of gRPC servers: certificate chain and key (PEM files; both or neither), and the CA
    # whose client certificates they require (mutual TLS; unset: none asked for).
    grpc_tls_cert: str = field(default_factory=lambda: env_str("GRPC_TLS_CERT", ""))
    grpc_tls_key: str = field(default_factory=lambda: env_str("GRPC_TLS_KEY", ""))
    grpc_tls_client_ca: str = field(default_factory=lambda: env_str("GRPC_TLS_CLIENT_CA", ""))
    # TLS of gRPC clients: the CA that signed the services' certificates (set: every channel is
    # TLS), the client certificate and key sent for mutual TLS, and the name checked against the
    # services' certificates (unset: the host of the address called).
    grpc_tls_ca: str = field(default_factory=lambda: env_str("GRPC_TLS_CA", ""))
    grpc_tls_client_cert: str = field(default_factory=lambda: env_str("GRPC_TLS_CLIENT_CERT", ""))
    grpc_tls_client_key: str = field(default_factory=lambda: env_str("GRPC_TLS_CLIENT_KEY", ""))
    grpc_tls_server_name: str = field(default_factory=lambda: env_str("GRPC_TLS_SERVER_NAME", ""))
    # The daily aggregates' rollup job: it runs at the minutes of the hour divisible by
    # ROLLUP_EVERY_MINUTES, recomputes the last ROLLUP_RECENT_DAYS days (today included; more
    # when the last run is older), replaces about ROLLUP_CHUNK_EVENTS events (all kinds, bots
    # included) per transaction, and a run's arq timeout is ROLLUP_TIMEOUT_SECONDS (a first
    # backfill of a large workspace takes the longest).
    rollup_every_minutes: int = field(default_factory=lambda: env_int("ROLLUP_EVERY_MINUTES", 5))
    rollup_recent_days: int = field(default_factory=lambda: env_int("ROLLUP_RECENT_DAYS", 2))
    rollup_chunk_events: int = field(
        default_factory=lambda: env_int("ROLLUP_CHUNK_EVENTS", 250_000)
    )
    rollup_timeout_seconds: int = field(
        default_factory=lambda: env_int("ROLLUP_TIMEOUT_SECONDS", 3600)
    )

    # Operating it. Prometheus metrics: the gateway serves them on its own port at /metrics;
    # every other process on METRICS_HOST and a port of its own: METRICS_PORT when set (one
    # copy of a component on a machine shared with others), else its component's
    # <COMPONENT>_METRICS_PORT (query 9471, live 9472, export 9473, audit 9474, worker 9475,
    # flusher 9476); 0 serves none. PROMETHEUS_MULTIPROC_DIR (prometheus-client's own variable)
    # is where processes that fork share their values (default RUN_DIR/metrics/<component>).
    metrics_host: str = field(default_factory=lambda: env_str("METRICS_HOST", "127.0.0.1"))
    metrics_port_override: int | None = field(
        default_factory=lambda: (
            int(os.environ["METRICS_PORT"]) if os.environ.get("METRICS_PORT") else None
        )
    )
    # Logs: `json` (one object per line; the default) or `text` (readable, the dev stack's),
    # and the level of every logger.
    log_format: str = field(default_factory=lambda: env_str("LOG_FORMAT", "json"))
    log_level: str = field(default_factory=lambda: env_str("LOG_LEVEL", "INFO"))
    # Readiness (/readyz, gRPC health): deadline of each dependency check, and seconds a
    # result is reused before the dependencies are asked again.
    readiness_timeout_seconds: float = field(
        default_factory=lambda: env_float("READINESS_TIMEOUT_SECONDS", 1.0)
    )
    readiness_interval_seconds: float = field(
        default_factory=lambda: env_float("READINESS_INTERVAL_SECONDS", 2.0)
    )
    # The query API (POST /api/analytics/query): the most groups one answer may hold (above it
    # the request is a 400 naming `dimensions`), and ClickHouse's max_execution_time of each of
    # its statements, whole seconds as ClickHouse takes them (a query running longer is a 504).
    query_max_groups: int = field(default_factory=lambda: env_int("QUERY_MAX_GROUPS", 10000))
    query_timeout_seconds: int = field(
        default_factory=lambda: max(1, env_int("QUERY_TIMEOUT_SECONDS", 20))
    )

    # Traces: exported over OTLP/HTTP to this collector (OpenTelemetry's own variable; the
    # exporter also reads the other OTEL_* variables) when set, none at all otherwise.
    otel_exporter_otlp_endpoint: str = field(
        default_factory=lambda: (
            env_str("OTEL_EXPORTER_OTLP_ENDPOINT", "")
            or env_str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
        )
    )
    # Dashboard links (`linkpulse dashboard link`): the gateway's address as browsers reach it
    # (e.g. https://analytics.example.com); empty: http://GATEWAY_HOST:GATEWAY_PORT.
    dashboard_base_url: str = field(default_factory=lambda: env_str("DASHBOARD_BASE_URL", ""))

    def __post_init__(self) -> None:
        if self.log_format not in LOG_FORMATS:
            raise ValueError(
                f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {self.log_format!r}"
            )
        if self.clickhouse_sharding not in CLICKHOUSE_SHARDINGS:
            raise ValueError(
                f"CLICKHOUSE_SHARDING must be one of {', '.join(CLICKHOUSE_SHARDINGS)},"
                f" not {self.clickhouse_sharding!r}"
            )

    @property
    def live_key_prefix(self) -> str:
        """Prefix of the live-feed keys (per deployment, like every ingestion key)."""
        return f"{self.ingest_key_prefix}:live"

    @property
    def arq_url(self) -> str:
        """The Redis of the arq queue: ARQ_REDIS_URL, else REDIS_URL."""
        return self.arq_redis_url or self.redis_url

    @property
    def export_path(self) -> Path:
        """Directory of export files."""
        return Path(self.export_dir) if self.export_dir else Path(self.run_dir) / "exports"

    @property
    def queue_name(self) -> str:
        """The arq queue of this deployment."""
        return self.arq_queue or f"{self.ingest_key_prefix}:arq:queue"

    def grpc_addr(self, service: str) -> str:
        """Connect address of one of the four gRPC services (one address or a comma list)."""
        return {
            "query": self.query_addr,
            "live": self.live_addr,
            "export": self.export_addr,
            "audit": self.audit_addr,
        }[service]

    def metrics_port(self, component: str) -> int:
        """Port of the Prometheus endpoint of a process of component (0: none)."""
        if self.metrics_port_override is not None:
            return self.metrics_port_override
        return env_int(f"{component.upper()}_METRICS_PORT", METRICS_PORTS[component])

    def grpc_listen(self, service: str) -> str:
        """The one address a process of service listens on (GRPC_LISTEN_ADDR, else its own)."""
        if self.grpc_listen_addr:
            return self.grpc_listen_addr
        address = self.grpc_addr(service)
        if "," in address:
            raise ValueError(
                f"the {service} service address {address!r} lists several copies: "
                "set GRPC_LISTEN_ADDR to the one address this process listens on"
            )
        return address


def load() -> Settings:
    """Settings from the current environment."""
    return Settings()
