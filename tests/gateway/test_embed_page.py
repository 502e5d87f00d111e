"""The embed page: served by the gateway alone, one nonce'd inline script, a strict CSP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from gateway.app import create_app
from services.config import Settings


@pytest_asyncio.fixture(loop_scope="session")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(Settings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


async def test_the_page_loads_nothing_from_elsewhere(client: httpx.AsyncClient) -> None:
    response = await client.get("/embed", params={"token": "abc.def"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    nonce = re.search(r"script-src 'nonce-([A-Za-z0-9_-]+)'", csp)
    assert nonce is not None
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self'"
    assert directives["style-src"] == f"'nonce-{nonce.group(1)}'"
    html = response.text
    assert html.count("<script") == 1 and f'<script nonce="{nonce.group(1)}">' in html
    assert not re.search(r"\bsrc=|https?://(?!www\.w3\.org/2000/svg)", html)
    assert "/api/analytics/embed" in html
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert "x-frame-options" not in response.headers  # made to be framed


async def test_each_answer_has_its_own_nonce(client: httpx.AsyncClient) -> None:
    first = await client.get("/embed")
    second = await client.get("/embed")
    policy = "content-security-policy"
    assert first.headers[policy] != second.headers[policy]
