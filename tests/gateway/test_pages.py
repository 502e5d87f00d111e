"""The embed and dashboard pages: served by the gateway alone, their scripts and styles only the
gateway's own static files, under a strict CSP without anything inline."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from gateway.app import create_app
from gateway.static_assets import STATIC_DIR
from services.config import Settings

_ASSET = re.compile(r' (?:src|href)="([^"]*)"')


@pytest_asyncio.fixture(loop_scope="session")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(Settings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


def _directives(csp: str) -> dict[str, str]:
    return dict(d.strip().split(" ", 1) for d in csp.split(";"))


@pytest.mark.parametrize(
    ("path", "scripts"),
    [
        ("/embed", ["linkpulse-ui.js", "embed.js"]),
        ("/dashboard", ["linkpulse-ui.js", "dashboard.js"]),
    ],
)
async def test_a_page_loads_only_the_gateways_own_files(
    client: httpx.AsyncClient, path: str, scripts: list[str]
) -> None:
    response = await client.get(path, params={"token": "abc.def"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    directives = _directives(response.headers["content-security-policy"])
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"].startswith("'self'")
    assert directives["img-src"] == "'none'" and directives["base-uri"] == "'none'"
    html = response.text
    assert not re.search(r"<script>|<style|\sstyle=|\son[a-z]+=|https?://", html)
    found = [u for u in _ASSET.findall(html) if not u.startswith("#")]  # in-page anchors
    assert [u.split("?")[0] for u in found if u.endswith(".js") or ".js?" in u] == [
        f"/static/{name}" for name in scripts
    ]
    for url in found:
        name, _, version = url.removeprefix("/static/").partition("?v=")
        assert url.startswith("/static/") and version
        content = (STATIC_DIR / name).read_bytes()
        assert version == hashlib.sha256(content).hexdigest()[:12]
        asset = await client.get(url)
        assert asset.status_code == 200 and asset.content == content
        assert asset.headers["x-content-type-options"] == "nosniff"
        assert "immutable" in asset.headers["cache-control"]
        kind = "javascript" if name.endswith(".js") else "css"
        assert kind in asset.headers["content-type"]
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


async def test_the_embed_may_be_framed_and_the_dashboard_not(client: httpx.AsyncClient) -> None:
    embed = await client.get("/embed")
    assert _directives(embed.headers["content-security-policy"])["frame-ancestors"] == "*"
    assert "x-frame-options" not in embed.headers
    dashboard = await client.get("/dashboard")
    assert _directives(dashboard.headers["content-security-policy"])["frame-ancestors"] == "'none'"
    assert dashboard.headers["x-frame-options"] == "DENY"


async def test_the_dashboard_may_open_websockets_to_its_own_host(client: httpx.AsyncClient) -> None:
    page = await client.get("/dashboard", headers={"host": "stats.example.com:8443"})
    connect = _directives(page.headers["content-security-policy"])["connect-src"]
    assert connect == "'self' ws://stats.example.com:8443 wss://stats.example.com:8443"
    # A Host header that is not a host name cannot add anything to the policy.
    page = await client.get("/dashboard", headers={"host": "x; script-src *"})
    assert _directives(page.headers["content-security-policy"])["connect-src"] == "'self'"


async def test_static_files_outside_the_directory_are_not_served(client: httpx.AsyncClient) -> None:
    for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/missing.js"):
        r = await client.get(path)
        assert r.status_code == 404, path


def test_no_script_or_style_comes_from_a_cdn() -> None:
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), path
        assert "@import" not in text and "eval(" not in text, path
