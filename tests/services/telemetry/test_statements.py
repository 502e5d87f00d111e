"""Statement kinds: the fixed labels of metrics and spans, never the statement's text."""

from __future__ import annotations

import pytest

from services.telemetry.statements import clickhouse_kind, statement_kind


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT 1", "select"),
        ("  \n\tselect * FROM t", "select"),
        ("-- a comment\nINSERT INTO t VALUES ($1)", "insert"),
        ("/* hint */ UPDATE t SET a = 1", "update"),
        ("DELETE FROM t", "delete"),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "select"),
        ("BEGIN", "other"),
        ("", "other"),
        ("SELECT_ME_NOT", "other"),
        ("CREATE TABLE t (a int)", "other"),
    ],
)
def test_postgres_kinds(sql: str, kind: str) -> None:
    assert statement_kind(sql) == kind


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT version()", "select"),
        ("  with x AS (SELECT 1) SELECT * FROM x", "select"),
        ("/* note */ SELECT 1", "select"),
        ("INSERT INTO t (a) VALUES", "insert"),
        ("ALTER TABLE t DELETE WHERE 1", "alter"),
        ("CREATE TABLE IF NOT EXISTS t (a UInt8) ENGINE = Memory", "create"),
        ("SHOW TABLES", "select"),
        ("EXISTS TABLE t", "select"),
        ("KILL QUERY WHERE 1", "other"),
        ("selectx", "other"),
        ("", "other"),
    ],
)
def test_clickhouse_kinds(sql: str, kind: str) -> None:
    assert clickhouse_kind(sql) == kind
