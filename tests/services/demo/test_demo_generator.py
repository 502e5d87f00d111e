"""The event generator on its own: exact totals, rhythm, consistency and determinism."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.demo import audience, loader
from services.demo.catalog import LINKS, PRICES
from services.demo.events import LEAD_COLUMNS, SALE_COLUMNS, DemoEvents
from services.demo.profiles import link_profiles
from services.demo.rhythm import apportion
from services.demo.rules import Condition, Rule, first_match
from services.demo.weighted import Weighted
from services.live.tables import CLICK_COLUMNS

TZ = ZoneInfo("America/New_York")
END = int(datetime(2025, 3, 12, 15, 30, tzinfo=UTC).timestamp())
DAYS = 28
APP_RULES = (
    Rule(501, 1, "https://apps.example/ios", (Condition(601, "os", "eq", "iOS"),)),
    Rule(502, 2, "https://apps.example/android", (Condition(602, "os", "eq", "Android"),)),
)
APP_LINK_ID = 1 + [spec.slug for spec in LINKS].index("app")


def _events(clicks: int, seed: int = 3, block_rows: int = 5_000, days: int = DAYS) -> DemoEvents:
    profiles = link_profiles(
        LINKS,
        list(range(1, len(LINKS) + 1)),
        {APP_LINK_ID: APP_RULES},
        days,
        Random(f"{seed}:links"),
    )
    return DemoEvents(
        9,
        profiles,
        start=END - days * 86400,
        end=END,
        tz=TZ,
        clicks=clicks,
        seed=seed,
        block_rows=block_rows,
    )


def _rows(events: DemoEvents) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {"clicks": [], "leads": [], "sales": []}
    for block in events.blocks():
        # Conversions are flushed once they reach block_rows, after the clicks that made them.
        limit = events.block_rows if block.table == "clicks" else 2 * events.block_rows
        assert 0 < len(block.rows) <= limit
        out[block.table].extend(block.rows)
    return out


@pytest.fixture(scope="module")
def generated() -> dict[str, list[tuple[Any, ...]]]:
    return _rows(_events(40_000))


def test_apportion_is_exact_and_proportional():
    counts = apportion([1.0, 2.0, 3.0, 0.5], 1001)
    assert sum(counts) == 1001
    assert counts[2] > counts[1] > counts[0] > counts[3]
    assert apportion([1.0, 1.0], 0) == [0, 0]


def test_weighted_pick_covers_the_edges():
    pool = Weighted([("a", 1.0), ("b", 0.0), ("c", 3.0)])
    assert pool.pick(0.0) == "a"
    assert pool.pick(0.2499) == "a"
    assert pool.pick(0.26) == "c"
    assert pool.pick(0.9999999) == "c"
    assert len(pool) == 2


def test_first_match_uses_priority_and_any_condition():
    rules = (
        Rule(2, 2, "https://b", (Condition(20, "country", "in", "DE, FR"),)),
        Rule(1, 1, "https://a", (Condition(10, "device", "eq", "tablet"),
                                 Condition(11, "country", "eq", "FR"))),
    )  # fmt: skip
    assert first_match(rules, {"country": "FR", "device": "mobile"}) == (1, 11, "https://a")
    assert first_match(rules, {"country": "DE", "device": "mobile"}) == (2, 20, "https://b")
    assert first_match(rules, {"country": "US", "device": "mobile"}) is None
    assert Condition(1, "os", "not_in", "iOS,Android").matches({"os": "Windows"})
    assert Condition(1, "referrer", "contains", "google").matches({"referrer": "google.com"})
    assert Condition(1, "os", "neq", "iOS").matches({"os": "Android"})


def test_user_agent_pools_are_consistent():
    for client in audience.DESKTOP_CLIENTS.items:
        assert client.device == "desktop" and not client.is_bot
    for client in audience.MOBILE_CLIENTS.items:
        assert client.device in ("mobile", "tablet") and client.os in ("iOS", "Android")
    for client in audience.BOT_CLIENTS.items:
        assert client.device == "bot" and client.is_bot
    for place in audience.PLACES.items:
        assert place.continent and place.region.startswith(place.country)


def test_totals_blocks_and_columns(generated):
    assert len(generated["clicks"]) == 40_000
    assert all(len(row) == len(CLICK_COLUMNS) for row in generated["clicks"])
    assert all(len(row) == len(LEAD_COLUMNS) for row in generated["leads"])
    assert all(len(row) == len(SALE_COLUMNS) for row in generated["sales"])
    leads, sales = len(generated["leads"]), len(generated["sales"])
    assert 0.015 * 40_000 < leads < 0.045 * 40_000
    assert 0.15 * leads < sales < 0.35 * leads
    ids = [row[0] for rows in generated.values() for row in rows]
    assert len(set(ids)) == len(ids)
    assert all(0 < i < 2**53 for i in ids)


def test_daily_and_weekly_rhythm(generated):
    col = CLICK_COLUMNS.index("timestamp")
    local = [datetime.fromtimestamp(int(row[col]), TZ) for row in generated["clicks"]]
    by_hour = Counter(t.hour for t in local)
    assert by_hour[3] * 4 < by_hour[14]
    full_days = [t for t in local if t.date() != local[0].date()]
    weekday = Counter(t.date() for t in full_days if t.weekday() < 5)
    weekend = Counter(t.date() for t in full_days if t.weekday() >= 5)
    assert sum(weekday.values()) / len(weekday) > 1.2 * sum(weekend.values()) / len(weekend)
    assert all(END - DAYS * 86400 <= int(row[col]) < END for row in generated["clicks"])


def test_clicks_are_consistent(generated):
    c = {name: i for i, name in enumerate(CLICK_COLUMNS)}
    triggers = Counter(row[c["trigger"]] for row in generated["clicks"])
    assert triggers["link"] > triggers["qr"] > 0
    bots = sum(row[c["is_bot"]] for row in generated["clicks"])
    assert 0.01 * 40_000 < bots < 0.035 * 40_000
    visitors = Counter(row[c["visitor_id"]] for row in generated["clicks"])
    assert len(visitors) < 0.85 * 40_000  # returning visitors
    for row in generated["clicks"]:
        if row[c["trigger"]] == "qr":
            assert row[c["device"]] in ("mobile", "tablet") and row[c["referrer"]] == "(direct)"
        if row[c["is_bot"]]:
            assert row[c["device"]] == "bot"
        if row[c["referrer"]] == "(direct)":
            assert row[c["referrer_url"]] == ""
        else:
            assert str(row[c["referrer_url"]]).startswith("https://")
        if row[c["link_id"]] == APP_LINK_ID and row[c["os"]] == "iOS":
            assert (row[c["rule_id"]], row[c["condition_id"]]) == (501, 601)
            assert row[c["destination_url"]] == "https://apps.example/ios"
        elif row[c["link_id"]] == APP_LINK_ID and row[c["os"]] == "Android":
            assert (row[c["rule_id"]], row[c["condition_id"]]) == (502, 602)
        else:
            assert (row[c["rule_id"]], row[c["condition_id"]]) == (0, 0)


def test_conversions_follow_their_click(generated):
    c = {name: i for i, name in enumerate(CLICK_COLUMNS)}
    clicks = {row[0]: row for row in generated["clicks"]}
    dims = ("country", "region", "city", "continent", "device", "browser", "os", "referrer",
            "trigger", "visitor_id")  # fmt: skip
    for table, columns in (("leads", LEAD_COLUMNS), ("sales", SALE_COLUMNS)):
        k = {name: i for i, name in enumerate(columns)}
        for row in generated[table]:
            click = clicks[row[k["click_id"]]]
            assert row[k["link_id"]] == click[c["link_id"]]
            assert click[c["timestamp"]] <= row[k["timestamp"]] < END
            assert all(row[k[d]] == click[c[d]] for d in dims)
            assert row[k["is_bot"]] == 0 and click[c["is_bot"]] == 0
    k = {name: i for i, name in enumerate(SALE_COLUMNS)}
    currencies = Counter(row[k["currency"]] for row in generated["sales"])
    assert set(currencies) <= set(PRICES)
    assert currencies["USD"] > max(currencies["EUR"], currencies["GBP"], currencies["JPY"])
    assert all(int(row[k["amount"]]) > 0 for row in generated["sales"])


def test_same_seed_same_events_other_seed_other_events():
    def strip_ids(rows: dict[str, list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
        return [row[1:] for row in rows["clicks"]]

    first, second = _rows(_events(3_000, seed=5)), _rows(_events(3_000, seed=5))
    assert strip_ids(first) == strip_ids(second)
    assert [r[4:] for r in first["sales"]] == [r[4:] for r in second["sales"]]
    assert strip_ids(_rows(_events(3_000, seed=6))) != strip_ids(first)


def test_progress_goes_to_stderr(capsys):
    loader._stderr("hello")
    out, err = capsys.readouterr()
    assert out == "" and "hello" in err


def test_a_crowded_slot_is_split_into_blocks():
    events = _events(30_000, block_rows=1_000, days=1)
    assert max(slot.clicks for slot in events.slots) > 1_000
    assert sum(len(rows) for rows in _rows(events).values()) > 30_000
