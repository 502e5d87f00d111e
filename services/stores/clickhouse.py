"""ClickHouse over the native protocol: a small pool of clickhouse-driver clients run off-loop."""

from __future__ import annotations

import asyncio
import queue
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from clickhouse_driver import Client
from clickhouse_driver import errors as ch_errors
from clickhouse_driver.errors import ErrorCodes
from clickhouse_driver.util.helpers import parse_url

from services.config import Settings
from services.errors import StoreUnavailable
from services.telemetry import measure, store_spans
from services.telemetry.statements import clickhouse_kind

# Settings that only servers older than a version know; a current server rejects them as
# unknown (error 115), so they go only to the servers that need them.
LEGACY_SETTINGS: tuple[tuple[tuple[int, ...], dict[str, Any]], ...] = (
    # LowCardinality columns are experimental before 19.1 and need this to be created.
    ((19, 1), {"allow_experimental_low_cardinality_type": 1}),
)


def parse_version(text: str) -> tuple[int, ...]:
    """(major, minor, …) of a server's version() string."""
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def settings_for(version: tuple[int, ...]) -> dict[str, Any]:
    """The version-specific settings a server of that version needs for DDL."""
    found: dict[str, Any] = {}
    for below, settings in LEGACY_SETTINGS:
        if version < below:
            found.update(settings)
    return found


# Settings of every query in cluster mode.
CLUSTER_SETTINGS: dict[str, Any] = {
    # Distributed inserts are asynchronous by default: rows of another shard would be queued
    # on the entry node (and accepted while that shard is down), so not queryable when the
    # insert returns and invisible to the flusher's recheck.
    "insert_distributed_sync": 1,
    # Reads and writes go to the first replica of each shard that answers (the others are
    # standbys): a count read right after an insert sees it, which a random replica that has
    # not yet fetched the part would not.
    "load_balancing": "in_order",
}


@dataclass(frozen=True)
class ClickHouseTarget:
    """Where a ClickHouse server is (plus failover hosts) and which database to use."""

    host: str
    port: int
    user: str
    password: str
    database: str
    # Other entry nodes (host, port) tried in turn when the first does not answer.
    alt_hosts: tuple[tuple[str, int], ...] = ()
    # The cluster's name in <remote_servers> when the database holds Distributed tables.
    cluster: str = ""
    # TLS options of the native protocol from the URL's query (clickhouse-driver's names).
    tls: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_url(cls, url: str, cluster: str = "") -> ClickHouseTarget:
        """Parse clickhouse://user:password@host:port/database?alt_hosts=host:port,host:port."""
        parsed = urlparse(url)
        alt_hosts = ",".join(parse_qs(parsed.query).get("alt_hosts", []))
        return cls(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 9000,
            user=unquote(parsed.username or "default"),
            password=unquote(parsed.password or ""),
            database=(parsed.path or "/").lstrip("/") or "default",
            tls=tls_options(url),
            alt_hosts=tuple(_host_port(item) for item in alt_hosts.split(",") if item.strip()),
            cluster=cluster,
        )

    @property
    def hosts(self) -> tuple[tuple[str, int], ...]:
        """Every entry node, the URL's own first."""
        return ((self.host, self.port), *self.alt_hosts)

    def on(self, host: str, port: int, database: str | None = None) -> ClickHouseTarget:
        """The same credentials on one node only (and another database if given)."""
        return replace(
            self,
            host=host,
            port=port,
            alt_hosts=(),
            database=self.database if database is None else database,
        )

    def spread(self) -> ClickHouseTarget:
        """The same hosts starting at a random one, so that processes spread their load."""
        hosts = self.hosts
        start = random.randrange(len(hosts))
        first, *rest = hosts[start:] + hosts[:start]
        return replace(self, host=first[0], port=first[1], alt_hosts=tuple(rest))

    def client(self, database: str | None = None) -> Client:
        """A new (lazily connecting) driver client."""
        settings: dict[str, Any] = {"use_numpy": False}
        if self.cluster:
            settings.update(CLUSTER_SETTINGS)
        extra: dict[str, Any] = {}
        if self.alt_hosts:
            extra["alt_hosts"] = ",".join(f"{host}:{port}" for host, port in self.alt_hosts)
        return Client(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.database if database is None else database,
            connect_timeout=3,
            send_receive_timeout=300,
            settings=settings,
            **extra,
            **dict(self.tls),
        )


def _host_port(item: str) -> tuple[str, int]:
    host, _, port = item.strip().rpartition(":")
    return (host, int(port)) if host else (port, 9000)


# Query options of CLICKHOUSE_URL that configure TLS (`clickhouses://` sets secure as well).
TLS_OPTIONS = frozenset(
    {"secure", "verify", "check_hostname", "ssl_version", "ca_certs", "ciphers"}
    | {"keyfile", "keypass", "certfile", "server_hostname"}
)


def tls_options(url: str) -> tuple[tuple[str, Any], ...]:
    """The TLS options of a ClickHouse URL (e.g. `?secure=1&ca_certs=/ca.pem&verify=1`), parsed
    as clickhouse-driver parses its own URLs."""
    _host, options = parse_url(url)
    return tuple(sorted((k, v) for k, v in options.items() if k in TLS_OPTIONS))


# Failures that mean "the server is not there", as opposed to a bad query.
_UNAVAILABLE = (
    ch_errors.NetworkError,
    ch_errors.SocketTimeoutError,
    ConnectionError,
    OSError,
    EOFError,
)

# Server errors that mean a shard, a replica or ZooKeeper is not there (seen on 18.16 with
# nodes and ZooKeeper stopped), as opposed to a bad query: the caller may retry later.
UNAVAILABLE_CODES = frozenset(
    {
        ErrorCodes.SOCKET_TIMEOUT,  # 209
        ErrorCodes.NETWORK_ERROR,  # 210
        ErrorCodes.NO_ZOOKEEPER,  # 225
        ErrorCodes.NO_REPLICA_HAS_PART,  # 234
        ErrorCodes.TABLE_IS_READ_ONLY,  # 242: a replicated table lost its ZooKeeper session
        ErrorCodes.UNEXPECTED_ZOOKEEPER_ERROR,  # 244
        ErrorCodes.ALL_CONNECTION_TRIES_FAILED,  # 279: every replica of a shard is down
        ErrorCodes.TOO_LESS_LIVE_REPLICAS,  # 285
        ErrorCodes.REPLICA_IS_NOT_IN_QUORUM,  # 289
        ErrorCodes.ALL_REPLICAS_ARE_STALE,  # 369
        ErrorCodes.KEEPER_EXCEPTION,  # 999
    }
)


def unavailable(exc: BaseException) -> bool:
    """True when exc means ClickHouse (or part of its cluster) is not there right now."""
    if isinstance(exc, _UNAVAILABLE):
        return True
    return isinstance(exc, ch_errors.ServerException) and exc.code in UNAVAILABLE_CODES


class ClickHouse:
    """Async facade: each call borrows a client from the pool and runs in a worker thread."""

    def __init__(self, target: ClickHouseTarget, pool_size: int = 8) -> None:
        self.target = target.spread() if target.alt_hosts else target
        self._idle: queue.LifoQueue[Client] = queue.LifoQueue()
        self._slots = asyncio.Semaphore(pool_size)

    @classmethod
    def from_url(cls, url: str, pool_size: int = 8, cluster: str = "") -> ClickHouse:
        """Pool for the server and database named by url (Distributed ones when cluster)."""
        return cls(ClickHouseTarget.from_url(url, cluster), pool_size)

    @classmethod
    def from_settings(cls, settings: Settings, pool_size: int = 8) -> ClickHouse:
        """Pool for the configured server or cluster."""
        return cls.from_url(settings.clickhouse_url, pool_size, settings.clickhouse_cluster)

    def _run(self, fn: Any) -> Any:
        try:
            client = self._idle.get_nowait()
        except queue.Empty:
            client = self.target.client()
        try:
            result = fn(client)
        except BaseException as exc:
            client.disconnect()
            if unavailable(exc):
                raise StoreUnavailable(f"ClickHouse is unreachable: {exc}") from exc
            raise
        self._idle.put(client)
        return result

    async def _call(self, fn: Any, kind: str) -> Any:
        with store_spans.clickhouse(kind, self.target.database, self.target.host, self.target.port):
            async with self._slots:
                with measure.clickhouse_call(kind):
                    return await asyncio.to_thread(self._run, fn)

    async def fetch(
        self,
        sql: str,
        params: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> list[tuple[Any, ...]]:
        """Rows of a SELECT with %(name)s parameters escaped by the driver (and query settings)."""
        return await self._call(
            lambda c: c.execute(sql, params or {}, settings=settings), clickhouse_kind(sql)
        )

    async def insert(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> int:
        """Insert rows (tuples in `columns` order) in one block; returns the row count."""
        data = list(rows)
        if not data:
            return 0
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES"
        await self._call(lambda c: c.execute(sql, data), "insert")
        return len(data)

    async def command(self, sql: str, settings: dict[str, Any] | None = None) -> None:
        """Run a statement without a result (DDL), with per-query settings if given."""
        await self._call(lambda c: c.execute(sql, settings=settings), clickhouse_kind(sql))

    async def server_version(self) -> tuple[int, ...]:
        """The server's version as (major, minor, …)."""
        rows = await self.fetch("SELECT version()")
        return parse_version(str(rows[0][0]))

    async def ping(self) -> bool:
        """True when the server answers."""
        try:
            await self.fetch("SELECT 1")
        except StoreUnavailable:
            return False
        return True

    def close(self) -> None:
        """Disconnect every idle client."""
        while True:
            try:
                self._idle.get_nowait().disconnect()
            except queue.Empty:
                return
