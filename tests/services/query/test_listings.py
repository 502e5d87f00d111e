"""SQL of one page of raw events: allow-listed columns, keyset position, direction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.query.listings import ListQuery, compile_list

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 3, 8, tzinfo=UTC)


def test_a_first_page_in_storage_order():
    sql, params = compile_list(
        ListQuery(
            "leads", 7, START, END, columns=("event_id", "timestamp", "customer_id"), limit=50
        )
    )
    assert sql == (
        "SELECT event_id, toUInt32(timestamp), customer_id FROM leads"
        " WHERE workspace_id = %(ws)s AND timestamp >= toDateTime(%(start)s)"
        " AND timestamp < toDateTime(%(end)s)"
        " ORDER BY timestamp ASC, event_id ASC LIMIT %(limit)s"
    )
    assert params["limit"] == 50


def test_a_later_page_starts_strictly_after_its_position():
    sql, params = compile_list(
        ListQuery(
            "clicks",
            7,
            START,
            END,
            columns=("event_id",),
            limit=10,
            include_bots=False,
            after=(1000, 5),
            descending=True,
        )
    )
    assert (
        "is_bot = 0 AND (timestamp < toDateTime(%(after_ts)s) OR"
        " (timestamp = toDateTime(%(after_ts)s) AND event_id < %(after_id)s))"
    ) in sql
    assert sql.endswith(" ORDER BY timestamp DESC, event_id DESC LIMIT %(limit)s")
    assert (params["after_ts"], params["after_id"]) == (1000, 5)


def test_columns_outside_the_kinds_list_are_refused():
    with pytest.raises(ValueError, match=r"columns not allowed for leads: \['rule_id'\]"):
        compile_list(ListQuery("leads", 7, START, END, columns=("event_id", "rule_id"), limit=1))
