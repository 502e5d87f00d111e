"""Embed tokens against the real system: minted with workspace:update, read only their scope
without an API key, refused after expiry or revocation; the iframe page draws its chart in
headless Chromium."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.auth.signing import signer
from tests import cdp
from tests.conftest import ROOT
from tests.e2e.cli import linkpulse

EMBED = "/api/analytics/embed"
TOKENS = "/api/analytics/embed/tokens"
SHOTS = ROOT / ".run" / "screenshots"


async def click(http, t, link_id: int, country: str, hours_ago: float = 1.0) -> None:
    """Track one click on link_id from country, a little while ago."""
    when = datetime.now(UTC) - timedelta(hours=hours_ago)
    r = await http.post(
        "/api/track/click",
        json={"linkId": link_id, "country": country, "timestamp": when.isoformat()},
        headers=t.headers,
    )
    assert r.status_code == 200, r.text


async def mint(http, t, **body: Any) -> dict[str, Any]:
    """A new embed token of t's workspace through REST."""
    r = await http.post(TOKENS, json=body, headers=t.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def widget(http, token: str, **params: Any):  # noqa: ANN201
    """GET the widget data with nothing but the token (no API key)."""
    return await http.get(EMBED, params={"token": token, **params})


@pytest.fixture
async def clicked(http, tenant):  # noqa: ANN201
    """A workspace with clicks on two links (3 from DE, 2 from FR) and another workspace's."""
    t = await tenant(links_count=2)
    other = await tenant(links_count=1)
    for _ in range(3):
        await click(http, t, t.link_ids[0], "DE")
    for _ in range(2):
        await click(http, t, t.link_ids[1], "FR")
    for _ in range(7):
        await click(http, other, other.link_ids[0], "US")
    return t


async def test_a_token_reads_only_its_scope(system, http, clicked):
    t = clicked
    whole = await mint(http, t, days=7)
    assert whole["embedPath"] == f"/embed?token={whole['token']}"
    r = await widget(http, whole["token"])
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["totals"]["clicks"] == 5
    assert {row["key"]: row["clicks"] for row in data["countries"]} == {"DE": 3, "FR": 2}
    assert len(data["points"]) == 7 and sum(p["clicks"] for p in data["points"]) == 5
    assert data["meta"]["granularity"] == "day"

    one_link = await mint(http, t, linkId=t.link_ids[1], days=3)
    data = (await widget(http, one_link["token"])).json()["data"]
    assert data["totals"]["clicks"] == 2
    assert [row["key"] for row in data["countries"]] == ["FR"]
    # A narrower range within the token's, hourly buckets.
    r = await widget(http, one_link["token"], days=1, granularity="hour")
    assert r.status_code == 200 and len(r.json()["data"]["points"]) in (24, 23, 25)
    # The scope and range come from the token: nothing else may be asked for.
    for extra in (
        {"linkId": t.link_ids[0]},
        {"campaignId": 1},
        {"country": "DE"},
        {"start": "2026-01-01"},
        {"days": 4},
        {"limit": 50},
    ):
        r = await widget(http, one_link["token"], **extra)
        assert r.status_code == 400, (extra, r.text)


async def test_minting_needs_workspace_update_and_a_link_of_the_workspace(system, http, tenant):
    t = await tenant()
    other = await tenant()
    reader = await tenant(scopes=("analytics:read",))
    r = await http.post(TOKENS, json={"days": 7}, headers=reader.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"
    r = await http.post(TOKENS, json={"linkId": other.link_ids[0]}, headers=t.headers)
    assert r.status_code == 404
    for bad in ({"days": 0}, {"days": 5000}, {"ttlSeconds": 1}, {"ttlSeconds": 10**9}):
        assert (await http.post(TOKENS, json=bad, headers=t.headers)).status_code == 400, bad
    made = await mint(http, t, days=2)
    listed = (await http.get(TOKENS, headers=t.headers)).json()["data"]["tokens"]
    assert [int(x["id"]) for x in listed] == [int(made["id"])]
    assert not listed[0].get("token")  # the token is shown once, never stored
    assert not (await http.get(TOKENS, headers=other.headers)).json()["data"].get("tokens")
    r = await http.delete(f"{TOKENS}/{made['id']}", headers=other.headers)
    assert r.status_code == 404


async def test_nothing_after_revocation(system, http, clicked):
    t = clicked
    made = await mint(http, t, days=7)
    assert (await widget(http, made["token"])).status_code == 200
    r = await http.delete(f"{TOKENS}/{made['id']}", headers=t.headers)
    assert r.status_code == 200
    for _ in range(40):  # rows are re-read after AUTH_CACHE_SECONDS=1
        r = await widget(http, made["token"])
        if r.status_code == 401:
            break
        await asyncio.sleep(0.1)
    assert r.status_code == 401
    assert "revoked" in r.json()["error"]["message"]
    listed = await http.get(TOKENS, params={"includeInactive": "true"}, headers=t.headers)
    assert listed.json()["data"]["tokens"][0]["revokedAt"]


async def test_nothing_after_expiry_or_with_a_forged_token(system, http, pg, settings, clicked):
    t = clicked
    made = await mint(http, t, days=7, ttlSeconds=60)
    claims = {"eid": int(made["id"]), "ws": t.workspace_id, "link": 0, "days": 7}
    keys = signer(settings)
    # A token whose signed expiry has passed.
    expired = keys.sign("embed", claims, -1)
    r = await widget(http, expired)
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]
    # A row that has expired (the signature alone would still pass).
    await pg.execute(
        "UPDATE embed_tokens SET expires_at = now() - interval '1 second' WHERE id = $1",
        int(made["id"]),
    )
    await asyncio.sleep(1.2)
    assert (await widget(http, made["token"])).status_code == 401
    # Forged: another workspace's claims under a made-up signature, another purpose, none.
    body, _, _ = made["token"].partition(".")
    for token in (f"{body}.AAAAAAAAAAAAAAAAAAAAAA", keys.sign("live", claims, 60), "", "x"):
        r = await widget(http, token)
        assert r.status_code == 401, (token, r.text)


async def test_cli_creates_and_revokes(system, http, clicked):
    t = clicked
    made = linkpulse(
        "embed", "create", "--workspace", str(t.workspace_id), "--link", str(t.link_ids[0]),
        "--days", "5", "--ttl", "2h",
    )  # fmt: skip
    assert made["link_id"] == t.link_ids[0] and made["days"] == 5
    expires = datetime.fromisoformat(made["expires_at"].replace("Z", "+00:00"))
    assert timedelta(hours=1.9) < expires - datetime.now(UTC) <= timedelta(hours=2)
    data = (await widget(http, made["token"])).json()["data"]
    assert data["totals"]["clicks"] == 3
    assert linkpulse("embed", "revoke", "--id", str(made["id"]))["revoked_at"]
    await asyncio.sleep(1.2)
    assert (await widget(http, made["token"])).status_code == 401


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is needed (make test installs it: apt-get install chromium)"
    return found


def _dump_dom(url: str) -> str:
    """The page's DOM after its scripts ran, from headless Chromium."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                _chromium(),
                "--headless",
                "--no-sandbox",  # tests may run as root
                "--disable-gpu",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=15000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            timeout=90,
        )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


async def test_the_page_draws_its_chart_in_headless_chromium(system, http, clicked):
    t = clicked
    made = await mint(http, t, days=7)
    page = await http.get(made["embedPath"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "style-src 'self'" in csp and "connect-src 'self'" in csp and "unsafe" not in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    # Nothing inline, nothing from elsewhere: only the gateway's own static files.
    assert "<script>" not in page.text and "<style" not in page.text and " style=" not in page.text
    assert re.findall(r' (?:src|href)="([^"]*)"', page.text) and all(
        url.startswith("/static/") for url in re.findall(r' (?:src|href)="([^"]*)"', page.text)
    )

    url = f"{system.gateway_url}{made['embedPath']}"
    dom = await asyncio.to_thread(_dump_dom, url)
    assert 'data-chart="drawn"' in dom, dom[-3000:]
    assert 'data-points="7"' in dom and "<polyline" in dom
    assert 'data-metric="clicks" data-value="5"' in dom
    assert "Germany" in dom and "France" in dom
    assert 'class="lp-axis-label"' in dom

    # A revoked token: the page says so instead of drawing.
    await http.delete(f"{TOKENS}/{made['id']}", headers=t.headers)
    await asyncio.sleep(1.2)
    dom = await asyncio.to_thread(_dump_dom, url)
    assert 'data-chart="error"' in dom and "revoked" in dom


_TOTALS = """Object.fromEntries(Array.from(document.querySelectorAll('.total')).map(
  e => [e.dataset.metric, [Number(e.dataset.value), e.querySelector('b').textContent]]))"""


@pytest.mark.parametrize("width", [320, 1440])
async def test_the_widget_is_readable_from_320_to_1440_px(system, http, tenant, width):
    t = await tenant(links_count=1, currency="EUR")
    r = await http.post(
        "/api/track/batch",
        json={
            "events": [
                {
                    "linkId": t.link_ids[0],
                    "country": country,
                    "timestamp": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
                }
                for country in ["DE"] * 700 + ["JP"] * 534 + ["BR"] * 3
            ]
        },
        headers=t.headers,
    )
    assert r.status_code == 200, r.text
    made = await mint(http, t, days=7)
    async with cdp.browser() as browser:
        page = await browser.new_page(width)
        await page.goto(f"{system.gateway_url}{made['embedPath']}")
        await page.wait_for("document.documentElement.dataset.chart === 'drawn'")
        totals = await page.eval(_TOTALS)
        assert totals["clicks"] == [1237, "1,237"]
        assert totals["revenue"] == [0, "€0.00"]
        names = await page.eval(
            "Array.from(document.querySelectorAll('#countries .name')).map(e => e.textContent)"
        )
        assert names == ["Germany", "Japan", "Brazil"]
        values = await page.eval(
            "Array.from(document.querySelectorAll('#countries .value')).map(e => e.textContent)"
        )
        assert values == ["700", "534", "3"]
        # Axes with labels, and a tooltip for the bucket the keyboard chose.
        assert await page.eval("document.querySelectorAll('#chart .lp-axis-label').length") >= 4
        await page.eval("document.getElementById('clicks-chart').focus(), true")
        tip = await page.wait_for(
            "(t => t && !t.hidden && t.textContent)(document.querySelector('#chart .lp-tooltip'))"
        )
        assert "Clicks: " in tip
        wide = await page.eval(
            "Array.from(document.querySelectorAll('body *'))"
            f".filter(e => e.getBoundingClientRect().right > {width} + 0.5)"
            ".filter(e => !e.closest('.lp-sr-only')).map(e => e.tagName + '.' + e.className)"
        )
        assert not wide
        assert await page.eval("window.innerWidth") == width
        await page.screenshot(SHOTS / f"embed-{width}.png")
