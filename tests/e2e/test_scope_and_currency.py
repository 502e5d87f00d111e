"""Scope filters resolve to the right links, and revenue is converted into the asked currency."""

from __future__ import annotations

from datetime import UTC, datetime

from services.admin import links

OVERVIEW = "/api/analytics/workspace/overview"
DAY = {"start": "2026-07-01", "end": "2026-07-01", "timezone": "UTC"}


async def _clicks(http, t, link_id: int, n: int) -> None:
    for i in range(n):
        r = await http.post(
            "/api/track/click",
            json={"linkId": link_id, "timestamp": f"2026-07-01T0{i}:00:00Z", "visitorId": f"{i}"},
            headers=t.headers,
        )
        assert r.status_code == 200, r.text


async def test_campaign_folder_and_tag_filters(system, http, pg, tenant):
    t = await tenant(links_count=0)
    ws = t.workspace_id
    spring = await links.create_group(pg, "campaigns", ws, "spring")
    folder = await links.create_group(pg, "folders", ws, "promo")
    tag = await links.create_group(pg, "tags", ws, "vip")
    in_campaign = await links.create_link(
        pg, ws, domain="t.lp", slug=f"c{ws}", destination_url="https://e.x/c", campaign_id=spring
    )
    in_folder = await links.create_link(
        pg, ws, domain="t.lp", slug=f"f{ws}", destination_url="https://e.x/f", folder_id=folder,
        tag_ids=[tag],
    )  # fmt: skip
    await _clicks(http, t, in_campaign["id"], 3)
    await _clicks(http, t, in_folder["id"], 5)

    async def clicks(**params: object) -> int:
        r = await http.get(OVERVIEW, params={**DAY, **params}, headers=t.headers)
        assert r.status_code == 200, r.text
        return r.json()["data"]["totals"]["clicks"]

    assert await clicks() == 8
    assert await clicks(campaignId=spring) == 3
    assert await clicks(folderId=folder) == 5
    assert await clicks(tagId=tag) == 5
    assert await clicks(campaignId=spring, folderId=folder) == 0  # filters intersect
    other = await tenant()
    r = await http.get(OVERVIEW, params={**DAY, "campaignId": spring}, headers=other.headers)
    assert r.status_code == 404


async def test_revenue_is_converted_with_the_fx_table(system, http, pg, ch, tenant):
    t = await tenant(currency="EUR")
    when = datetime(2026, 7, 1, 12, tzinfo=UTC)
    sales = [(1000, "USD"), (2550, "EUR"), (10000, "JPY"), (999, "GBP")]
    await ch.insert(
        "sales",
        ("event_id", "workspace_id", "link_id", "click_id", "timestamp", "amount", "currency"),
        [
            (9_000_000 + i, t.workspace_id, t.link_ids[0], 0, when, amount, code)
            for i, (amount, code) in enumerate(sales)
        ],
    )
    rates = {
        r["code"].strip(): (r["minor_units"], float(r["usd_per_unit"]))
        for r in await pg.fetch(
            "SELECT c.code, c.minor_units, f.usd_per_unit FROM currencies c"
            " JOIN fx_rates f ON f.currency = c.code"
        )
    }
    usd = sum(amount / 10 ** rates[code][0] * rates[code][1] for amount, code in sales)
    for asked, expected_code in (("USD", "USD"), ("", "EUR"), ("JPY", "JPY"), ("ZZZ", "EUR")):
        r = await http.get(OVERVIEW, params={**DAY, "currency": asked}, headers=t.headers)
        data = r.json()["data"]
        assert data["meta"]["currency"] == expected_code
        expected = usd / rates[expected_code][1]
        assert data["totals"]["sales"] == 4
        assert abs(data["totals"]["revenue"] - round(expected, 2)) < 0.011
