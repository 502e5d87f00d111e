"""Redis client (redis-py asyncio): one server, or a Redis Cluster (REDIS_CLUSTER=on)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.connection import parse_url

from services.config import Settings

# TLS options a REDIS_URL may carry in its query (with `rediss://`); redis-py reads them from the
# URL itself, arq does not.
TLS_OPTIONS = frozenset(
    {"ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_check_hostname"}
)


def create_redis(
    url: str, connect_timeout: float = 2.0, reply_timeout: float = 5.0, *, cluster: bool = False
) -> Redis:
    """Client for the server and database named by url (with cluster, for the Redis Cluster
    url's node belongs to); connects on first use."""
    if cluster:
        client = RedisCluster.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=reply_timeout,
            health_check_interval=30,
        )
        # Typed as Redis: callers use the commands both clients share.
        return client  # type: ignore[return-value]
    return Redis.from_url(
        url,
        socket_connect_timeout=connect_timeout,
        socket_timeout=reply_timeout,
        health_check_interval=30,
    )


def redis_of(settings: Settings) -> Redis:
    """The deployment's Redis client: REDIS_URL, a cluster client when REDIS_CLUSTER=on."""
    return create_redis(settings.redis_url, cluster=settings.redis_cluster)


def is_cluster(redis: object) -> bool:
    """True when redis is a Redis Cluster client."""
    return isinstance(redis, RedisCluster)


def tls_options(url: str) -> dict[str, Any]:
    """The TLS options in url's query (e.g. `?ssl_ca_certs=/etc/linkpulse/ca.pem`), as redis-py
    parses them."""
    return {name: value for name, value in parse_url(url).items() if name in TLS_OPTIONS}
