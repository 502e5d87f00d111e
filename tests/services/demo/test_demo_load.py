"""load_demo against real PostgreSQL and ClickHouse: counts, ownership, idempotence, reset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.auth.tokens import token_hash
from services.demo import load_demo
from services.demo.workspace import BUILDING_SLUG
from services.stores.clickhouse import ClickHouse
from tests.services.demo.conftest import DemoStores

NOW = datetime(2025, 3, 12, 15, 30, 7, tzinfo=UTC)  # the range crosses the DST change of Mar 9
DAYS = 14
CLICKS = 20_000
SEED = 11
TABLES = ("clicks", "leads", "sales")


async def _load(stores: DemoStores, **kwargs: Any) -> dict[str, Any]:
    messages: list[str] = []
    args: dict[str, Any] = {"clicks": CLICKS, "days": DAYS, "seed": SEED, "now": NOW}
    result = await load_demo(stores.pg, stores.ch, progress=messages.append, **{**args, **kwargs})
    result["_messages"] = messages
    return result


async def _count(ch: ClickHouse, table: str, workspace_id: int) -> int:
    rows = await ch.fetch(
        f"SELECT count() FROM {table} WHERE workspace_id = %(ws)s", {"ws": workspace_id}
    )
    return int(rows[0][0])


async def _per_day(ch: ClickHouse, workspace_id: int) -> list[tuple[Any, ...]]:
    return await ch.fetch(
        "SELECT toDate(timestamp) AS day, count() FROM clicks WHERE workspace_id = %(ws)s"
        " GROUP BY day ORDER BY day",
        {"ws": workspace_id},
    )


async def _per_slug(stores: DemoStores, workspace_id: int) -> dict[str, int]:
    slugs = {
        r["id"]: r["slug"]
        for r in await stores.pg.fetch(
            "SELECT id, slug FROM links WHERE workspace_id = $1", workspace_id
        )
    }
    rows = await stores.ch.fetch(
        "SELECT link_id, count() FROM clicks WHERE workspace_id = %(ws)s GROUP BY link_id",
        {"ws": workspace_id},
    )
    return {slugs[link_id]: n for link_id, n in rows}


@pytest.fixture(scope="module")
async def first(demo_stores: DemoStores) -> dict[str, Any]:
    """The first demo load, with its clicks per day and per link slug taken right away."""
    result = await _load(demo_stores)
    result["_days"] = await _per_day(demo_stores.ch, result["workspace_id"])
    result["_links"] = await _per_slug(demo_stores, result["workspace_id"])
    return result


async def test_result_describes_a_new_workspace(first, demo_stores):
    assert first["created"] is True
    assert (first["clicks"], first["links"], first["campaigns"]) == (CLICKS, 40, 5)
    assert first["start"] == (NOW - timedelta(days=DAYS)).isoformat()
    assert first["end"] == NOW.isoformat()
    assert any("20,000/20,000 clicks" in m for m in first["_messages"])
    ws = await demo_stores.pg.fetchrow(
        "SELECT * FROM workspaces WHERE id = $1", first["workspace_id"]
    )
    assert (ws["slug"], ws["name"], ws["plan"], ws["timezone"]) == (
        "demo", "Demo", "business", "America/New_York",
    )  # fmt: skip
    assert ws["default_currency"].strip() == "USD"
    assert ws["organization_id"] == first["organization_id"]
    key = await demo_stores.pg.fetchrow(
        "SELECT workspace_id, scopes FROM api_keys WHERE key_hash = $1",
        token_hash(first["api_key"]),
    )
    assert key["workspace_id"] == first["workspace_id"]
    assert set(key["scopes"]) == {"analytics:read", "events:write", "workspace:update"}
    budgets = await demo_stores.pg.fetch(
        "SELECT * FROM budgets WHERE workspace_id = $1", first["workspace_id"]
    )
    assert len(budgets) == 5
    for budget in budgets:
        assert budget["amount_minor"] > 0 and budget["cost_per_click_minor"] > 0
        assert budget["period_start"] <= (NOW - timedelta(days=DAYS)).date()
        assert budget["period_end"] >= NOW.astimezone(UTC).date() - timedelta(days=1)
    tagged = await demo_stores.pg.fetchval(
        "SELECT count(DISTINCT link_id) FROM link_tags WHERE workspace_id = $1",
        first["workspace_id"],
    )
    assert tagged > 30


async def test_clickhouse_counts_equal_the_result(first, demo_stores):
    for table in TABLES:
        assert await _count(demo_stores.ch, table, first["workspace_id"]) == first[table]
    assert first["leads"] > 0 and first["sales"] > 0


async def test_every_event_is_on_a_link_of_the_workspace(first, demo_stores):
    own = {
        r["id"]
        for r in await demo_stores.pg.fetch(
            "SELECT id FROM links WHERE workspace_id = $1", first["workspace_id"]
        )
    }
    for table in TABLES:
        rows = await demo_stores.ch.fetch(
            f"SELECT DISTINCT link_id FROM {table} WHERE workspace_id = %(ws)s",
            {"ws": first["workspace_id"]},
        )
        assert {r[0] for r in rows} <= own
    clicks = await demo_stores.ch.fetch("SELECT DISTINCT workspace_id FROM clicks")
    assert {r[0] for r in clicks} == {first["workspace_id"]}


async def test_leads_and_sales_point_at_clicks_of_the_same_link(first, demo_stores):
    params = {"ws": first["workspace_id"]}
    clicks = {
        event_id: (link_id, ts, country, visitor)
        for event_id, link_id, ts, country, visitor in await demo_stores.ch.fetch(
            "SELECT event_id, link_id, toUnixTimestamp(timestamp), country, visitor_id"
            " FROM clicks WHERE workspace_id = %(ws)s",
            params,
        )
    }
    for table in ("leads", "sales"):
        rows = await demo_stores.ch.fetch(
            "SELECT click_id, link_id, toUnixTimestamp(timestamp), country, visitor_id"
            f" FROM {table} WHERE workspace_id = %(ws)s",
            params,
        )
        for click_id, link_id, ts, country, visitor in rows:
            click_link, click_ts, click_country, click_visitor = clicks[click_id]
            assert (link_id, country, visitor) == (click_link, click_country, click_visitor)
            assert ts >= click_ts


async def test_sale_currencies_are_supported(first, demo_stores):
    supported = {
        r["code"].strip() for r in await demo_stores.pg.fetch("SELECT code FROM currencies")
    }
    rows = await demo_stores.ch.fetch(
        "SELECT currency, count(), min(amount) FROM sales WHERE workspace_id = %(ws)s"
        " GROUP BY currency",
        {"ws": first["workspace_id"]},
    )
    assert {r[0] for r in rows} <= supported
    assert "USD" in {r[0] for r in rows}
    assert all(r[2] > 0 for r in rows)


async def test_timestamps_are_within_the_range(first, demo_stores):
    start, end = int((NOW - timedelta(days=DAYS)).timestamp()), int(NOW.timestamp())
    for table in TABLES:
        low, high = (
            await demo_stores.ch.fetch(
                f"SELECT toUnixTimestamp(min(timestamp)), toUnixTimestamp(max(timestamp))"
                f" FROM {table} WHERE workspace_id = %(ws)s",
                {"ws": first["workspace_id"]},
            )
        )[0]
        assert start <= low <= high <= end


async def test_rule_clicks_name_the_rule_and_condition_of_their_link(first, demo_stores):
    conditions = {
        (r["link_id"], r["rule_id"], r["condition_id"]): r["destination_url"]
        for r in await demo_stores.pg.fetch(
            "SELECT l.link_id, l.id AS rule_id, c.id AS condition_id, l.destination_url"
            " FROM link_rules l JOIN rule_conditions c ON c.rule_id = l.id"
            " WHERE l.workspace_id = $1",
            first["workspace_id"],
        )
    }
    rows = await demo_stores.ch.fetch(
        "SELECT link_id, rule_id, condition_id, destination_url, count() FROM clicks"
        " WHERE workspace_id = %(ws)s AND rule_id != 0"
        " GROUP BY link_id, rule_id, condition_id, destination_url",
        {"ws": first["workspace_id"]},
    )
    assert len(rows) >= 4
    for link_id, rule_id, condition_id, destination, _ in rows:
        assert conditions[(link_id, rule_id, condition_id)] == destination


async def test_second_call_without_reset_adds_nothing(first, demo_stores):
    again = await _load(demo_stores, clicks=999)
    assert again["created"] is False
    assert again["workspace_id"] == first["workspace_id"]
    assert again["organization_id"] == first["organization_id"]
    assert again["api_key"] != first["api_key"]
    for table in TABLES:
        assert again[table] == first[table]
        assert await _count(demo_stores.ch, table, first["workspace_id"]) == first[table]
    assert (again["links"], again["campaigns"]) == (40, 5)
    valid = await demo_stores.pg.fetchval(
        "SELECT count(*) FROM api_keys WHERE workspace_id = $1 AND revoked_at IS NULL",
        first["workspace_id"],
    )
    assert valid == 2


class _FailingClickHouse(ClickHouse):
    """ClickHouse whose second insert fails, as if the server went away mid-load."""

    inserts = 0

    async def insert(self, table, columns, rows):  # type: ignore[no-untyped-def]
        self.inserts += 1
        if self.inserts > 1:
            raise RuntimeError("ClickHouse went away")
        return await super().insert(table, columns, rows)


async def test_failed_reset_keeps_the_old_demo(first, demo_stores):
    failing = _FailingClickHouse.from_url(demo_stores.ch_url, pool_size=1)
    try:
        with pytest.raises(RuntimeError):
            await load_demo(
                demo_stores.pg, failing, clicks=250_000, days=DAYS, seed=SEED, now=NOW,
                reset=True, progress=lambda _: None,
            )  # fmt: skip
    finally:
        failing.close()
    demo = await demo_stores.pg.fetchval("SELECT id FROM workspaces WHERE slug = 'demo'")
    building = await demo_stores.pg.fetchval(
        "SELECT count(*) FROM workspaces WHERE slug LIKE 'demo--building%'"
    )
    # The old demo was already retired; what is left is an unfinished build, not a partial demo.
    assert demo is None and building == 1


async def test_reset_builds_the_same_demo_in_a_new_workspace(first, demo_stores):
    again = await _load(demo_stores, reset=True)
    assert again["created"] is True
    assert again["workspace_id"] != first["workspace_id"]
    assert again["organization_id"] == first["organization_id"]
    for table in TABLES:
        assert again[table] == first[table]
        assert await _count(demo_stores.ch, table, again["workspace_id"]) == first[table]
    assert await _per_day(demo_stores.ch, again["workspace_id"]) == first["_days"]
    assert await _per_slug(demo_stores, again["workspace_id"]) == first["_links"]
    slugs = [r["slug"] for r in await demo_stores.pg.fetch("SELECT slug FROM workspaces")]
    assert slugs.count("demo") == 1 and not [s for s in slugs if s.startswith(BUILDING_SLUG)]
    assert (
        await demo_stores.pg.fetchval("SELECT id FROM workspaces WHERE slug = 'demo'")
        == again["workspace_id"]
    )
