"""Validating and enriching clicks: the rows they become and the errors that name the field."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from services import protos
from services.errors import ApiError
from services.live import rows
from services.live.enrich import accept_clicks
from services.live.tables import CLICK_COLUMNS
from services.live.visitors import VisitorIds

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
Click = protos.live_pb2.ClickEvent
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
VISITORS = VisitorIds(b"a deployment's visitor key")


def accept(*events: Click, offset: int | None = 0):  # noqa: ANN201
    return accept_clicks(
        list(events),
        workspace_id=4,
        destinations={7: "https://example.com/7"},
        new_ids=itertools.count(1000),
        now=NOW,
        visitors=VISITORS,
        offset=offset,
    )


def row(accepted, at: int = 0) -> dict:  # noqa: ANN001
    return dict(zip(CLICK_COLUMNS, rows.decode("click", accepted.rows[at]), strict=True))


def test_a_click_is_filled_in_from_what_it_says() -> None:
    accepted = accept(
        Click(
            link_id=7,
            timestamp="2026-11-23T11:59:30Z",
            country=" de ",
            user_agent=IPHONE,
            referrer_url="https://news.example.com/a?b=1",
            ip="10.0.0.1",
        ),
        Click(link_id=7, event_id=55, visitor_id="v9", device="bot"),
    )
    first, second = row(accepted), row(accepted, 1)
    assert first["event_id"] == 1000 and second["event_id"] == 55
    assert accepted.claimed == [False, True] and accepted.event_ids == [1000, 55]
    assert first["timestamp"] == int(datetime(2026, 11, 23, 11, 59, 30, tzinfo=UTC).timestamp())
    assert second["timestamp"] == int(NOW.timestamp())
    assert (first["country"], first["continent"]) == ("DE", "EU")
    assert (first["device"], first["os"], first["is_bot"]) == ("mobile", "iOS", 0)
    assert first["referrer"] == "news.example.com" and second["referrer"] == "(direct)"
    assert len(first["visitor_id"]) == 32 and second["visitor_id"] == "v9"
    assert second["is_bot"] == 1 and first["destination_url"] == "https://example.com/7"
    assert accepted.stats[1] == ("click", int(NOW.timestamp()), 7, "v9")
    assert accepted.cache_fields == ["1000", "55"]


@pytest.mark.parametrize(
    "stamp",
    ["2026-11-23T11:00:00", " 2026-11-23T11:00:00Z ", "2026-11-23T12:00:00+01:00", "2026-11-23"],
)
def test_timestamps_in_any_iso_form_are_utc(stamp: str) -> None:
    seconds = row(accept(Click(link_id=7, timestamp=stamp)))["timestamp"]
    assert NOW - timedelta(hours=12) <= datetime.fromtimestamp(seconds, UTC) <= NOW


@pytest.mark.parametrize(
    ("event", "field", "words"),
    [
        (Click(link_id=8), "events[3].link_id", "not found"),
        (Click(), "events[3].link_id", "required"),
        (Click(link_id=7, timestamp="yesterday"), "events[3].timestamp", "ISO-8601"),
        (Click(link_id=7, timestamp="2026-11-23T12:06:00Z"), "events[3].timestamp", "future"),
        (Click(link_id=7, timestamp="1999-12-31T23:59:59Z"), "events[3].timestamp", "2000"),
        (Click(link_id=7, country="Germany"), "events[3].country", "alpha-2"),
        (Click(link_id=7, event_id=-4), "events[3].event_id", "2^53"),
        (Click(link_id=7, city="x" * 3000), "events[3].city", "longer than"),
        (Click(link_id=7, user_agent="x" * 3000), "events[3].user_agent", "longer than"),
        (Click(link_id=7, ip="1" * 3000), "events[3].ip", "longer than"),
    ],
)
def test_a_bad_click_fails_the_batch_naming_its_field(event: Click, field: str, words: str) -> None:
    with pytest.raises(ApiError) as bad:
        accept(Click(link_id=7), event, offset=2)
    assert bad.value.field == field and words in bad.value.message


def test_a_single_click_names_the_bare_field() -> None:
    with pytest.raises(ApiError) as bad:
        accept(Click(link_id=7, country="XYZ"), offset=None)
    assert bad.value.field == "country"


def test_a_long_row_of_short_fields_is_accepted() -> None:
    accepted = accept(Click(link_id=7, city="c" * 2000, region="r" * 2000, referrer_url="u" * 2000))
    assert row(accepted)["city"] == "c" * 2000


def test_an_unknown_link_is_not_found_in_the_workspace() -> None:
    with pytest.raises(ApiError) as bad:
        accept(Click(link_id=7), Click(link_id=12345))
    error = bad.value
    assert (error.code, error.reason, error.field) == (
        grpc.StatusCode.NOT_FOUND,
        "not_found",
        "events[1].link_id",
    )
    assert error.message == "link 12345 not found in this workspace"


def test_a_click_without_a_country_gets_the_country_of_its_address() -> None:
    accepted = accept(
        Click(link_id=7, ip="8.8.8.8"),
        Click(link_id=7, ip="2001:4860:4860::8888", continent="na"),
        Click(link_id=7, ip="8.8.8.8", country="fr"),  # an explicit country wins
        Click(link_id=7, ip="10.0.0.1"),  # private: no country
        Click(link_id=7, ip="not an address"),
    )
    found = [(row(accepted, at)["country"], row(accepted, at)["continent"]) for at in range(5)]
    assert found == [("US", "NA"), ("US", "NA"), ("FR", "EU"), ("", ""), ("", "")]


def test_the_visitor_id_is_a_keyed_hash_and_the_address_is_not_stored() -> None:
    same = [Click(link_id=7, ip="203.0.113.9", user_agent=IPHONE) for _ in range(2)]
    ours = accept(*same)
    theirs = accept_clicks(
        same,
        workspace_id=4,
        destinations={7: "https://example.com/7"},
        new_ids=itertools.count(1000),
        now=NOW,
        visitors=VisitorIds(b"another deployment's key"),
    )
    first, second = row(ours)["visitor_id"], row(ours, 1)["visitor_id"]
    assert first == second == VISITORS.of("203.0.113.9", IPHONE, 0) and len(first) == 32
    assert row(theirs)["visitor_id"] != first
    assert all(b"203.0.113" not in line for line in ours.rows)
    assert {stat[3] for stat in ours.stats} == {first}
