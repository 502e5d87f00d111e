"""Client spans of the stores linkpulse calls through its own facades (ClickHouse): the system,
the database and the statement's kind, never its text or parameter values."""

from __future__ import annotations

import contextlib
from typing import Any

from opentelemetry.trace import SpanKind

from services.telemetry import tracing


def clickhouse(
    kind: str, database: str, host: str = "", port: int = 0
) -> contextlib.AbstractContextManager[Any]:
    """The span of one ClickHouse call (a shared no-op when tracing is off)."""
    if not tracing.enabled():
        return tracing.NO_SPAN
    attributes: dict[str, Any] = {
        "db.system": "clickhouse",
        "db.system.name": "clickhouse",
        "db.operation": kind,
        "db.operation.name": kind,
        "db.name": database,
        "db.namespace": database,
    }
    if host:
        attributes["server.address"] = host
        attributes["server.port"] = port
    return tracing.span(f"clickhouse {kind}", SpanKind.CLIENT, attributes)
