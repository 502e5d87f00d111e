"""The kind of a SQL statement (select, insert, …) that metrics and spans are labelled with: a
fixed set, so a statement's text never makes a new series or leaks into a span."""

from __future__ import annotations

import re

POSTGRES_KINDS = frozenset({"select", "insert", "update", "delete"})
CLICKHOUSE_KINDS = frozenset(
    {"select", "insert", "create", "alter", "drop", "rename", "truncate", "optimize", "system"}
)
# Statements that only read, whatever their first keyword.
_READS = frozenset({"with", "show", "describe", "desc", "exists"})
_FIRST_WORD = re.compile(r"\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*(\w+)", re.DOTALL)


def statement_kind(sql: str, kinds: frozenset[str] = POSTGRES_KINDS) -> str:
    """The first keyword of sql, lower-cased, when it is one of kinds (a reading statement is
    select); else "other"."""
    found = _FIRST_WORD.match(sql)
    word = found.group(1).lower() if found else ""
    if word in _READS:
        return "select"
    return word if word in kinds else "other"


def clickhouse_kind(sql: str) -> str:
    """The statement kind of a ClickHouse statement."""
    return statement_kind(sql, CLICKHOUSE_KINDS)
