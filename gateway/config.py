"""Tunables of the gateway process, read from the environment with defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.config import env_float, env_int


@dataclass(frozen=True)
class GatewayConfig:
    """Deadlines and limits of the HTTP gateway; every field has an environment variable."""

    # Deadline of each unary backend call.
    deadline_seconds: float = field(
        default_factory=lambda: env_float("GATEWAY_DEADLINE_SECONDS", 30.0)
    )
    # Largest request body accepted; larger ones are answered 413.
    max_body_bytes: int = field(default_factory=lambda: env_int("GATEWAY_MAX_BODY_BYTES", 1 << 20))
    # Longest query string accepted; longer ones are answered 400.
    max_query_bytes: int = field(
        default_factory=lambda: env_int("GATEWAY_MAX_QUERY_BYTES", 8 << 10)
    )
    # Deadline of each backend health check of /healthz.
    health_timeout_seconds: float = field(
        default_factory=lambda: env_float("GATEWAY_HEALTH_TIMEOUT_SECONDS", 1.0)
    )
    # Seconds uvicorn waits for open requests on shutdown.
    shutdown_grace_seconds: float = field(
        default_factory=lambda: env_float("GATEWAY_SHUTDOWN_GRACE_SECONDS", 10.0)
    )


def load_config() -> GatewayConfig:
    """Gateway tunables from the current environment."""
    return GatewayConfig()
