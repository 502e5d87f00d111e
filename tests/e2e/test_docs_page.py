"""GET /docs in headless Chromium: Swagger UI renders the operations of /openapi.json with their
proto comments, "Try it out" with an API key runs a real analytics route and shows the
numbers, and nothing is loaded from elsewhere nor refused by the page's CSP."""

from __future__ import annotations

import httpx

from gateway.comments import load_comments
from services.codegen import DESCRIPTOR_SET
from tests.cdp import browser

OPERATION = "#operations-query-GetWorkspaceOverview"


async def test_docs_page_and_assets_headers(system, http: httpx.AsyncClient) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "connect-src 'self'" in csp and "unsafe" not in csp
    assert "<script>" not in page.text and "//" not in page.text.replace("://", "")
    bundle = await http.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and "javascript" in bundle.headers["content-type"]
    assert len(bundle.content) > 500_000
    assert (await http.get("/docs/assets/index.html")).status_code == 404
    assert (await http.get("/docs/assets/..%2Fopenapi.py")).status_code == 404


async def test_try_it_out_in_chromium(system, http: httpx.AsyncClient, tenant) -> None:
    t = await tenant()
    for link_id in (t.link_ids[0], t.link_ids[0], t.link_ids[-1]):
        r = await http.post("/api/track/click", json={"linkId": link_id}, headers=t.headers)
        assert r.status_code == 200, r.text
    await system.drained()
    expected = await http.get("/api/analytics/workspace/overview", headers=t.headers)
    assert expected.json()["data"]["totals"]["clicks"] == 3

    document = (await http.get("/openapi.json")).json()
    summary = document["paths"]["/api/analytics/workspace/overview"]["get"]["summary"]
    comment = load_comments(DESCRIPTOR_SET)["linkpulse.v1.QueryService.GetWorkspaceOverview"]
    assert comment.startswith(summary + "."), (summary, comment)

    base = system.gateway_url
    async with browser() as chromium:
        page = await chromium.new_page(1280, 2000)
        await page.goto(f"{base}/docs")
        count = await page.wait_for("document.querySelectorAll('.opblock').length")
        assert count == sum(len(ops) for ops in document["paths"].values())
        text = await page.eval(
            f"document.querySelector('{OPERATION} .opblock-summary-description').textContent"
        )
        assert text == summary

        await page.click(".auth-wrapper .authorize")
        await page.wait_for("!!document.querySelector('.auth-container input')")
        await page.type_into(".auth-container input", t.key)
        await page.click(".auth-btn-wrapper button.authorize")
        await page.wait_for("!!document.querySelector('.auth-btn-wrapper .btn-done')")
        await page.click(".auth-btn-wrapper .btn-done")

        await page.click(f"{OPERATION} .opblock-summary-control")
        await page.wait_for(f"!!document.querySelector('{OPERATION} .try-out__btn')")
        await page.click(f"{OPERATION} .try-out__btn")
        await page.wait_for(f"!!document.querySelector('{OPERATION} .execute')")
        await page.click(f"{OPERATION} .execute")
        status = await page.wait_for(
            f"(document.querySelector('{OPERATION} .live-responses-table tbody"
            " .response-col_status') || {}).textContent"
        )
        body = await page.eval(
            f"document.querySelector('{OPERATION} .live-responses-table').textContent"
        )
        assert status.strip() == "200", body
        assert '"clicks": 3' in body, body

        violations = await page.csp_violations()
        assert violations == [], violations
        log = [str(entry.get("text", "")) for entry in chromium.log_entries(page.session)]
        refused = [line for line in log if "Content Security Policy" in line]
        assert refused == [], refused
        elsewhere = [url for url in page.requests if not url.startswith((base, "data:", "about:"))]
        assert elsewhere == [], elsewhere
        assert f"{base}/openapi.json" in page.requests
        executed = [u for u in page.requests if u.startswith(f"{base}/api/analytics/workspace/")]
        # Swagger UI sends the documented defaults along: what the route does without them.
        assert executed == [f"{base}/api/analytics/workspace/overview?days=30&includeBots=false"]


async def test_documented_headers_are_sent(system, http: httpx.AsyncClient, tenant) -> None:
    document = (await http.get("/openapi.json")).json()
    overview = document["paths"]["/api/analytics/workspace/overview"]["get"]["responses"]
    documented = set(overview["200"]["headers"])
    assert documented == {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                          "X-Request-Id"}  # fmt: skip
    t = await tenant()
    r = await http.get("/api/analytics/workspace/overview", headers=t.headers)
    assert r.status_code == 200, r.text
    assert {name.lower() for name in documented} <= set(r.headers), r.headers
    assert int(r.headers["x-ratelimit-limit"]) > 0

    limited = document["components"]["responses"]["Error429"]
    assert {"Retry-After", "X-RateLimit-Limit"} <= set(limited["headers"])
    unauthorized = await http.get("/api/analytics/workspace/overview")
    assert unauthorized.status_code == 401
    assert "x-request-id" in unauthorized.headers
    example = document["components"]["responses"]["Error401"]["content"]["application/json"]
    assert unauthorized.json()["error"]["code"] == example["example"]["error"]["code"]
