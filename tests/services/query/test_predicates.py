"""The shared predicates of an EventScope: workspace first, range, links, bots, filters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.query.predicates import DimensionFilter, EventScope

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 3, 8, tzinfo=UTC)
BEFORE = datetime(2026, 2, 22, tzinfo=UTC)


def test_workspace_comes_first_then_range_and_bots():
    where, params = EventScope("clicks", 7, START, END).where()
    assert where == [
        "workspace_id = %(ws)s",
        "timestamp >= toDateTime(%(start)s)",
        "timestamp < toDateTime(%(end)s)",
        "is_bot = 0",
    ]
    assert params == {
        "ws": 7,
        "start": int(START.timestamp()),
        "end": int(END.timestamp()),
        "compare_start": 0,
    }


def test_a_compare_period_widens_the_range_back_to_its_start():
    where, params = EventScope("sales", 7, START, END, compare_start=BEFORE).where("hour")
    assert where[1:3] == ["hour >= toDateTime(%(compare_start)s)", "hour < toDateTime(%(end)s)"]
    assert params["compare_start"] == int(BEFORE.timestamp())


def test_links_bots_and_filters_are_parameters():
    scope = EventScope(
        "clicks",
        7,
        START,
        END,
        link_ids=(3, 1),
        filters=(
            DimensionFilter("country", ("US", "DE")),
            DimensionFilter("destination", ("https://x.test/'; DROP",), exclude=True),
        ),
        include_bots=True,
    )
    where, params = scope.where()
    assert where[3:] == [
        "link_id IN %(links)s",
        "country IN %(f0)s",
        "destination_url NOT IN %(f1)s",
    ]
    assert params["links"] == (3, 1)
    assert params["f0"] == ("US", "DE")
    assert params["f1"] == ("https://x.test/'; DROP",)
    assert "DROP" not in " ".join(where)


def test_only_allow_listed_dimensions_of_the_kind_reach_sql():
    # destination is a click dimension: leads do not carry it.
    leads = EventScope("leads", 7, START, END, filters=(DimensionFilter("destination", ("a",)),))
    with pytest.raises(KeyError):
        leads.where()
    with pytest.raises(KeyError):
        EventScope("clicks", 7, START, END, filters=(DimensionFilter("1=1", ("a",)),)).where()


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown event kind 'visits'"):
        EventScope("visits", 7, START, END).where()
