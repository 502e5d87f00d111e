"""The gateway's access log: one line per request (logger `linkpulse.access`) with its request id,
route template, status and duration; `token=` query values are logged as `token=…`.

WebSocket and embed URLs carry short-lived tokens in the query string (browsers cannot send
headers there); headers (Authorization among them) are never logged.
"""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"((?:^|[?&])token=)[^&\s]*", re.IGNORECASE)

log = logging.getLogger("linkpulse.access")
# Probes and scrapes (health checks every few seconds) are logged at DEBUG, not INFO.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def redact(text: str) -> str:
    """text with every token= value replaced."""
    return _TOKEN.sub(r"\1…", text)


def target(path: str, query_string: bytes) -> str:
    """The request target as logged: path and query, token values masked."""
    if not query_string:
        return path
    return f"{path}?{redact(query_string.decode('latin-1'))}"


def record(
    *,
    method: str,
    target: str,
    route: str,
    status: int,
    duration_ms: float,
    client: str,
) -> None:
    """Log one served request (its request id, trace and workspace come from the log context)."""
    log.log(
        logging.DEBUG if route in QUIET_ROUTES and status < 400 else logging.INFO,
        "%s %s %d %.1fms",
        method,
        target,
        status,
        duration_ms,
        extra={
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(duration_ms, 3),
            "client": client,
        },
    )
