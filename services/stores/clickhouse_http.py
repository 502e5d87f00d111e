"""ClickHouse's HTTP interface for data the server formats or parses itself: export files
streamed out, ingested rows posted in (both blocking; run off-loop)."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

from clickhouse_driver import Client

from services.config import Settings
from services.errors import StoreUnavailable
from services.stores.clickhouse import CLUSTER_SETTINGS, UNAVAILABLE_CODES, ClickHouseTarget

CHUNK_BYTES = 1 << 20
# Server settings of every streamed query: 64-bit integers as JSON numbers, not strings.
STREAM_SETTINGS = {"output_format_json_quote_64bit_integers": "0"}


# How much of the end of an answer is kept to look for an error ClickHouse appended late.
TAIL_BYTES = 4096
_CODE = re.compile(r"Code: (\d+)")
_LATE_ERROR = re.compile(rb"(?:^|\n)(Code: \d+[.,] [^\n]*DB::Exception[^\n]*)\n?\Z")


class ClickHouseQueryError(Exception):
    """ClickHouse refused or failed the query (not a connectivity problem)."""


def _refused(status: int, text: str) -> Exception:
    """The error for a non-200 answer: StoreUnavailable when a shard, replica or ZooKeeper is
    not there, else ClickHouseQueryError."""
    code = _CODE.search(text)
    if code and int(code.group(1)) in UNAVAILABLE_CODES:
        return StoreUnavailable(f"ClickHouse answered {status}: {text}")
    return ClickHouseQueryError(f"ClickHouse answered {status}: {text}")


def render(sql: str, params: dict[str, Any]) -> str:
    """sql with its %(name)s parameters escaped and substituted as clickhouse-driver does."""
    client = Client(host="127.0.0.1")  # only its escaping context is used; it never connects
    return str(client.substitute_params(sql, params, client.connection.context))


# (host, HTTP port) of each ClickHouse host, tried in turn until one accepts the connection.
Endpoints = Sequence[tuple[str, int]]


def endpoints(target: ClickHouseTarget, settings: Settings) -> list[tuple[str, int]]:
    """The HTTP endpoint of each of target's hosts, in target's order (see CLICKHOUSE_HTTP_PORT)."""
    listed = ClickHouseTarget.from_url(settings.clickhouse_url).hosts
    ports = dict(zip(listed, settings.clickhouse_http_ports, strict=False))
    default = settings.clickhouse_http_port
    return [(host, ports.get((host, port), default)) for host, port in target.hosts]


def _connect(nodes: Endpoints) -> http.client.HTTPConnection:
    """A connection to the first endpoint that accepts one (failover before anything is sent:
    a request is never sent twice)."""
    failures = []
    for host, port in nodes:
        conn = http.client.HTTPConnection(host, port, timeout=300)
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            failures.append(f"{host}:{port}: {exc}")
            continue
        return conn
    raise StoreUnavailable(f"ClickHouse is unreachable over HTTP ({'; '.join(failures)})")


def _headers(target: ClickHouseTarget) -> dict[str, str]:
    headers = {"X-ClickHouse-User": target.user, "Content-Type": "text/plain"}
    if target.password:
        headers["X-ClickHouse-Key"] = target.password
    return headers


def insert_csv(
    target: ClickHouseTarget, nodes: Endpoints, table: str, columns: Sequence[str], body: bytes
) -> None:
    """Insert CSV records (columns in that order, newline-terminated) into table."""
    query = f"INSERT INTO {table} ({', '.join(columns)}) FORMAT CSV"
    params = {"database": target.database, "query": query}
    if target.cluster:
        params.update({name: str(value) for name, value in CLUSTER_SETTINGS.items()})
    url = "/?" + urlencode(params)
    conn = _connect(nodes)
    try:
        conn.request("POST", url, body=body, headers=_headers(target))
        response = conn.getresponse()
        answer = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise StoreUnavailable(f"ClickHouse is unreachable over HTTP: {exc}") from exc
    finally:
        conn.close()
    if response.status != 200:
        text = answer[:4096].decode("utf-8", "replace").strip()
        raise _refused(response.status, text)


@contextmanager
def stream(
    target: ClickHouseTarget, nodes: Endpoints, sql: str, params: dict[str, Any]
) -> Iterator[Iterator[bytes]]:
    """The body of a query's answer in chunks of about CHUNK_BYTES (blocking; run off-loop)."""
    query = render(sql, params)
    url = "/?" + urlencode({"database": target.database, **STREAM_SETTINGS})
    headers = _headers(target)
    conn = _connect(nodes)
    try:
        try:
            conn.request("POST", url, body=query.encode(), headers=headers)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            raise StoreUnavailable(f"ClickHouse is unreachable over HTTP: {exc}") from exc
        if response.status != 200:
            text = response.read(4096).decode("utf-8", "replace").strip()
            raise _refused(response.status, text)

        def chunks() -> Iterator[bytes]:
            tail = b""
            try:
                while chunk := response.read(CHUNK_BYTES):
                    tail = (tail + chunk)[-TAIL_BYTES:]
                    yield chunk
            except (OSError, http.client.HTTPException) as exc:
                raise StoreUnavailable(f"ClickHouse stopped answering: {exc}") from exc
            failed = _LATE_ERROR.search(tail)
            if failed:
                # The status line went out before the query failed: ClickHouse appended the
                # error to the body instead. (No data line starts with "Code: ": strings are
                # quoted in CSV and every NDJSON line starts with "{".)
                raise StoreUnavailable(f"ClickHouse failed mid-answer: {failed.group(1).decode()}")

        yield chunks()
    finally:
        conn.close()
