"""Every process logs one JSON object per line with the request's fields, and no credential (API
key, live or embed token, a wrong key, the database password) ever reaches a log: the gateway,
query, export and worker of the test's own stack, and the session's live, audit and flusher."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import websockets

from services.telemetry.logs import BASE_KEYS
from tests.e2e.own_stack import OwnStack, own_stack

WINDOW = {"start": "2026-01-01", "end": "2026-01-10", "timezone": "UTC"}
# The session's PostgreSQL trusts loopback: a password in the URL is accepted (and unused), and
# must then be kept out of every log like a real one.
DB_PASSWORD = "pw-" + secrets.token_hex(12)
# Lines the process starter writes into a log file before the process starts.
STARTER_PREFIX = "--- "


def with_password(url: str, password: str) -> str:
    """url with password set for its user."""
    parts = urlsplit(url)
    netloc = f"{parts.username or 'postgres'}:{password}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture(scope="module")
def logged(system) -> Iterator[OwnStack]:
    """A gateway, query, export and worker logging JSON, the database URL with a password."""
    env = {
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "DEBUG",
        "DATABASE_URL": with_password(system.settings.database_url, DB_PASSWORD),
    }
    with own_stack(system.settings, "logged", env) as stack:
        yield stack


def lines_of(logs: dict[str, Path]) -> dict[str, list[str]]:
    """Each process's log lines (without the starter's)."""
    return {
        name: [
            line
            for line in path.read_text().splitlines()
            if line.strip() and not line.startswith(STARTER_PREFIX)
        ]
        for name, path in logs.items()
    }


async def test_every_line_is_json_with_request_fields_and_no_secret(system, logged, tenant):
    t = await tenant()
    wrong_key = "lp_" + secrets.token_urlsafe(32)
    rid = f"logs-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=logged.gateway_url, timeout=30) as http:
        ok = await http.get(
            "/api/analytics/workspace/overview",
            params=WINDOW,
            headers={**t.headers, "x-request-id": rid},
        )
        assert ok.status_code == 200, ok.text
        refused = await http.get(
            "/api/analytics/workspace/overview",
            params=WINDOW,
            headers={"Authorization": f"Bearer {wrong_key}", "x-request-id": f"{rid}-wrong"},
        )
        assert refused.status_code == 401
        live = await http.post("/api/analytics/live/token", json={}, headers=t.headers)
        assert live.status_code == 200, live.text
        live_token = live.json()["data"]["token"]
        embed = await http.post("/api/analytics/embed/tokens", json={}, headers=t.headers)
        assert embed.status_code == 200, embed.text
        embed_token = embed.json()["data"]["token"]
        page = await http.get("/embed", params={"token": embed_token})
        assert page.status_code == 200
        widget = await http.get("/api/analytics/embed", params={"token": embed_token})
        assert widget.status_code == 200, widget.text
        export = await http.post(
            "/api/analytics/exports",
            params={**WINDOW, "dataset": "clicks", "columns": "event_id"},
            headers=t.headers,
        )
        assert export.status_code in (200, 202), export.text
    ws_url = logged.gateway_url.replace("http://", "ws://")
    async with websockets.connect(f"{ws_url}/api/analytics/live/ws?token={live_token}") as feed:
        await feed.recv()
    # The WebSocket's access line is written once the gateway has seen the socket close.
    logs = lines_of(logged.logs)
    for _ in range(300):
        if any('"route": "/api/analytics/live/ws"' in line for line in logs["gateway"]):
            break
        await asyncio.sleep(0.1)
        logs = lines_of(logged.logs)
    # The session's live service (it checked the live token), audit service and flusher too.
    logs.update(
        lines_of({name: system.specs[name].log_path for name in ("live", "audit", "flusher")})
    )
    secrets_used = {
        "api key": t.key,
        "wrong key": wrong_key,
        "live token": live_token,
        "embed token": embed_token,
        "database password": DB_PASSWORD,
    }
    for name, lines in logs.items():
        assert lines, f"{name} logged nothing"
        for line in lines:
            record = json.loads(line)  # every line is one JSON object
            assert isinstance(record, dict), line
            missing = [key for key in BASE_KEYS if key not in record]
            assert not missing, (name, missing, line)
            assert record["process"] == name
            for what, secret in secrets_used.items():
                assert secret not in line, f"{what} in the {name} log: {line}"
    access = [json.loads(line) for line in logs["gateway"]]
    mine = [r for r in access if r.get("request_id") == rid and r["logger"] == "linkpulse.access"]
    assert len(mine) == 1, access
    line = mine[0]
    assert line["route"] == "/api/analytics/workspace/overview" and line["status"] == 200
    assert line["method"] == "GET" and line["duration_ms"] >= 0
    assert line["workspace"] == t.workspace_id
    refusal = [r for r in access if r.get("request_id") == f"{rid}-wrong"]
    assert [r["status"] for r in refusal if r["logger"] == "linkpulse.access"] == [401]
    # The embed page, the widget and the WebSocket: their token masked, their route a template.
    tokened = [r for r in access if r["logger"] == "linkpulse.access" and "token=" in r["message"]]
    assert {r["route"] for r in tokened} == {
        "/embed",
        "/api/analytics/embed",
        "/api/analytics/live/ws",
    }
    assert all("?token=…" in r["message"] for r in tokened)
