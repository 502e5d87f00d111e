"""Redis client (redis-py asyncio)."""

from __future__ import annotations

from redis.asyncio import Redis


def create_redis(url: str, connect_timeout: float = 2.0, reply_timeout: float = 5.0) -> Redis:
    """Client for the server and database named by url; connects on first use."""
    return Redis.from_url(
        url,
        socket_connect_timeout=connect_timeout,
        socket_timeout=reply_timeout,
        health_check_interval=30,
    )
