"""Export SQL: every raw event of a kind in a range and scope, streamed by ClickHouse as a file."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from services.query.listings import LIST_COLUMNS
from services.query.predicates import EventScope
from services.stores.clickhouse import ClickHouse

# Export file formats, and ClickHouse's output format of each.
EXPORT_FORMATS = {"csv": "CSVWithNames", "ndjson": "JSONEachRow"}
# Columns of the raw tables that hold numbers; every other listed column is a string.
NUMERIC_COLUMNS = frozenset(
    {"event_id", "link_id", "click_id", "rule_id", "condition_id", "is_bot", "amount"}
)
# First characters that make a spreadsheet run a cell as a formula (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _export_column(column: str, fmt: str) -> str:
    """The outer SELECT expression of one column (the inner query names it c_<column>).

    Times are ISO-8601 UTC; in CSV, strings are made safe for spreadsheets.
    """
    inner = f"c_{column}"
    if column == "timestamp":
        return f"concat(replaceOne(toString({inner}, 'UTC'), ' ', 'T'), 'Z') AS timestamp"
    if column in NUMERIC_COLUMNS or fmt != "csv":
        return f"{inner} AS {column}"
    escaped = (c.replace("\t", "\\t").replace("\r", "\\r") for c in FORMULA_STARTS)
    starts = ", ".join(f"'{c}'" for c in escaped)
    # A formula-like cell gets a leading apostrophe; line breaks become spaces, so that every
    # row is exactly one line of the file.
    safe = f"if(substring({inner}, 1, 1) IN ({starts}), concat('''', {inner}), {inner})"
    return f"replaceAll(replaceAll({safe}, '\\r', ' '), '\\n', ' ') AS {column}"


@dataclass(frozen=True, kw_only=True)
class ExportQuery(EventScope):
    """Every raw event of one kind in a UTC range and scope, as a file format, in storage order."""

    columns: tuple[str, ...]
    fmt: str = "csv"
    include_bots: bool = True


def _export_where(q: ExportQuery) -> tuple[list[str], dict[str, Any]]:
    unknown = set(q.columns) - set(LIST_COLUMNS[q.kind])
    if unknown or not q.columns:
        raise ValueError(f"columns not allowed for {q.kind}: {sorted(unknown) or '(none)'}")
    if q.fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {q.fmt!r}")
    # No link has id 0; an empty IN list is not valid SQL on every server.
    return (q if q.link_ids is None or q.link_ids else replace(q, link_ids=(0,))).where()


def compile_export(q: ExportQuery) -> tuple[str, dict[str, Any]]:
    """SQL (ending in its FORMAT clause) and parameters streaming the rows of an export."""
    where, params = _export_where(q)
    # The outer query's names may equal the table's columns without the WHERE seeing them.
    inner = ", ".join(f"{c} AS c_{c}" for c in q.columns)
    outer = ", ".join(_export_column(c, q.fmt) for c in q.columns)
    sql = (
        f"SELECT {outer} FROM (SELECT {inner} FROM {q.kind} WHERE {' AND '.join(where)})"
        f" FORMAT {EXPORT_FORMATS[q.fmt]}"
    )
    return sql, params


async def count_export(ch: ClickHouse, q: ExportQuery) -> int:
    """How many rows the export has now (its estimate before it runs)."""
    where, params = _export_where(q)
    rows = await ch.fetch(f"SELECT count() FROM {q.kind} WHERE {' AND '.join(where)}", params)
    return int(rows[0][0])
