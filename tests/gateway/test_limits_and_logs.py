"""Query-string limit (400 naming `query`, WebSocket 4400) and tokens kept out of access logs."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gateway.accesslog import redact, target
from gateway.limits import QueryLimit


def _app(max_bytes: int) -> QueryLimit:
    inner = Starlette(routes=[Route("/x", lambda _r: PlainTextResponse("ok"))])
    return QueryLimit(inner, max_bytes)


async def test_long_query_strings_are_400_short_ones_pass() -> None:
    transport = httpx.ASGITransport(app=_app(32))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        ok = await client.get("/x", params={"days": "7"})
        assert ok.status_code == 200 and ok.text == "ok"
        long = await client.get("/x", params={"linkId": "1" * 64})
    assert long.status_code == 400
    body = long.json()
    assert body["success"] is False and body["error"]["field"] == "query"
    assert "exceeds 32 bytes" in body["error"]["message"]


def test_access_log_paths_lose_their_tokens() -> None:
    assert redact("/embed?token=abc.def&days=7") == "/embed?token=…&days=7"
    assert redact("/api/analytics/live/ws?kind=click&TOKEN=lpl_x") == (
        "/api/analytics/live/ws?kind=click&TOKEN=…"
    )
    assert redact("/api/analytics/live?mytoken=1") == "/api/analytics/live?mytoken=1"
    assert target("/embed", b"token=secret&days=7") == "/embed?token=…&days=7"
