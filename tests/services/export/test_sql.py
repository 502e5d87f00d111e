"""SQL of a raw export: allow-listed columns, ISO times, spreadsheet-safe CSV, empty scopes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.export.sql import ExportQuery, compile_export

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 3, 8, tzinfo=UTC)


def test_ndjson_streams_the_scope_with_iso_times():
    sql, params = compile_export(
        ExportQuery("clicks", 7, START, END, columns=("event_id", "timestamp"), fmt="ndjson")
    )
    assert sql == (
        "SELECT c_event_id AS event_id,"
        " concat(replaceOne(toString(c_timestamp, 'UTC'), ' ', 'T'), 'Z') AS timestamp"
        " FROM (SELECT event_id AS c_event_id, timestamp AS c_timestamp FROM clicks"
        " WHERE workspace_id = %(ws)s AND timestamp >= toDateTime(%(start)s)"
        " AND timestamp < toDateTime(%(end)s)) FORMAT JSONEachRow"
    )
    assert params["ws"] == 7


def test_csv_strings_are_made_safe_and_numbers_left_alone():
    sql, _ = compile_export(ExportQuery("sales", 7, START, END, columns=("amount", "referrer")))
    assert "c_amount AS amount," in sql
    assert "if(substring(c_referrer, 1, 1) IN ('=', '+', '-', '@', '\\t', '\\r')" in sql
    assert sql.endswith(" FORMAT CSVWithNames")


def test_an_empty_link_scope_matches_no_link():
    _, params = compile_export(
        ExportQuery("clicks", 7, START, END, columns=("event_id",), link_ids=())
    )
    assert params["links"] == (0,)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (ExportQuery("leads", 7, START, END, columns=("rule_id",)), r"\['rule_id'\]"),
        (ExportQuery("leads", 7, START, END, columns=()), r"\(none\)"),
        (ExportQuery("leads", 7, START, END, columns=("event_id",), fmt="xml"), "'xml'"),
    ],
)
def test_unknown_columns_and_formats_are_refused(query, message):
    with pytest.raises(ValueError, match=message):
        compile_export(query)
