"""Client spans of the stores linkpulse calls through its own facades (ClickHouse): the system,
the database and the statement's kind, never its text or parameter values."""

from __future__ import annotations

import contextlib
import re
from typing import Any

from opentelemetry.trace import SpanKind

from services.telemetry import tracing

_FIRST_WORD = re.compile(r"\s*(?:/\*.*?\*/\s*|--[^\n]*\n\s*)*([A-Za-z]+)", re.DOTALL)
# The statement kinds reported as they are; anything else is "other".
KINDS = frozenset(
    {"select", "insert", "alter", "create", "drop", "optimize", "rename", "truncate", "system"}
)


def statement_kind(sql: str) -> str:
    """select, insert, alter, … of a SQL statement (WITH … SELECT is select), else other."""
    found = _FIRST_WORD.match(sql)
    word = found.group(1).lower() if found else ""
    if word in ("with", "show", "describe", "desc", "exists"):
        return "select"
    return word if word in KINDS else "other"


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
