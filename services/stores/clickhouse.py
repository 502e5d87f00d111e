"""ClickHouse over the native protocol: a small pool of clickhouse-driver clients run off-loop."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from clickhouse_driver import Client
from clickhouse_driver import errors as ch_errors
from clickhouse_driver.util.helpers import parse_url

from services.errors import StoreUnavailable

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


@dataclass(frozen=True)
class ClickHouseTarget:
    """Where a ClickHouse server is and which database to use."""

    host: str
    port: int
    user: str
    password: str
    database: str
    # TLS options of the native protocol from the URL's query (clickhouse-driver's names).
    tls: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_url(cls, url: str) -> ClickHouseTarget:
        """Parse clickhouse://user:password@host:port/database."""
        parsed = urlparse(url)
        return cls(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 9000,
            user=unquote(parsed.username or "default"),
            password=unquote(parsed.password or ""),
            database=(parsed.path or "/").lstrip("/") or "default",
            tls=tls_options(url),
        )

    def client(self, database: str | None = None) -> Client:
        """A new (lazily connecting) driver client."""
        return Client(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.database if database is None else database,
            connect_timeout=3,
            send_receive_timeout=300,
            settings={"use_numpy": False},
            **dict(self.tls),
        )


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


class ClickHouse:
    """Async facade: each call borrows a client from the pool and runs in a worker thread."""

    def __init__(self, target: ClickHouseTarget, pool_size: int = 8) -> None:
        self.target = target
        self._idle: queue.LifoQueue[Client] = queue.LifoQueue()
        self._slots = asyncio.Semaphore(pool_size)

    @classmethod
    def from_url(cls, url: str, pool_size: int = 8) -> ClickHouse:
        """Pool for the server and database named by url."""
        return cls(ClickHouseTarget.from_url(url), pool_size)

    def _run(self, fn: Any) -> Any:
        try:
            client = self._idle.get_nowait()
        except queue.Empty:
            client = self.target.client()
        try:
            result = fn(client)
        except _UNAVAILABLE as exc:
            client.disconnect()
            raise StoreUnavailable(f"ClickHouse is unreachable: {exc}") from exc
        except BaseException:
            client.disconnect()
            raise
        self._idle.put(client)
        return result

    async def _call(self, fn: Any) -> Any:
        async with self._slots:
            return await asyncio.to_thread(self._run, fn)

    async def fetch(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of a SELECT with %(name)s parameters escaped by the driver."""
        return await self._call(lambda c: c.execute(sql, params or {}))

    async def insert(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> int:
        """Insert rows (tuples in `columns` order) in one block; returns the row count."""
        data = list(rows)
        if not data:
            return 0
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES"
        await self._call(lambda c: c.execute(sql, data))
        return len(data)

    async def command(self, sql: str, settings: dict[str, Any] | None = None) -> None:
        """Run a statement without a result (DDL), with per-query settings if given."""
        await self._call(lambda c: c.execute(sql, settings=settings))

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
