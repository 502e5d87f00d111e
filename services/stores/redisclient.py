"""Redis client (redis-py asyncio)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import parse_url

# TLS options a REDIS_URL may carry in its query (with `rediss://`); redis-py reads them from the
# URL itself, arq does not.
TLS_OPTIONS = frozenset(
    {"ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_check_hostname"}
)


def create_redis(url: str, connect_timeout: float = 2.0, reply_timeout: float = 5.0) -> Redis:
    """Client for the server and database named by url; connects on first use."""
    return Redis.from_url(
        url,
        socket_connect_timeout=connect_timeout,
        socket_timeout=reply_timeout,
        health_check_interval=30,
    )


def tls_options(url: str) -> dict[str, Any]:
    """The TLS options in url's query (e.g. `?ssl_ca_certs=/etc/linkpulse/ca.pem`), as redis-py
    parses them."""
    return {name: value for name, value in parse_url(url).items() if name in TLS_OPTIONS}
