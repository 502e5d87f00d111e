"""Export jobs over the gateway: submit, wait, download and count the ids."""

from __future__ import annotations

import asyncio
import gzip
import time
from typing import Any

import httpx
import orjson

from tests.chaos.conftest import DAY, Tenant

EXPORTS = "/api/analytics/exports"
PARAMS = {"dataset": "clicks", "start": DAY, "end": DAY, "timezone": "UTC", "format": "ndjson"}


async def submit(http: httpx.AsyncClient, t: Tenant) -> str:
    """Start an export job of the tenant's clicks on DAY; its id."""
    r = await http.post(EXPORTS, params=PARAMS, headers=t.headers)
    assert r.status_code == 202, r.text
    return str(r.json()["data"]["id"])


async def job(http: httpx.AsyncClient, t: Tenant, job_id: str) -> dict[str, Any]:
    """The job as the gateway shows it."""
    r = await http.get(f"{EXPORTS}/{job_id}", headers=t.headers)
    assert r.status_code == 200, r.text
    return dict(r.json()["data"])


async def wait_writing(http: httpx.AsyncClient, t: Tenant, job_id: str) -> dict[str, Any]:
    """Wait until the worker is writing the job's file."""
    deadline = time.monotonic() + 60
    while True:
        seen = await job(http, t, job_id)
        if seen["status"] == "running" and seen["rowsWritten"] > 0:
            return seen
        assert seen["status"] in ("queued", "running"), seen
        assert time.monotonic() < deadline, seen
        await asyncio.sleep(0.05)


async def wait_done(
    http: httpx.AsyncClient, t: Tenant, job_id: str, seconds: float = 120
) -> dict[str, Any]:
    """Wait until the job succeeded (any other end fails)."""
    deadline = time.monotonic() + seconds
    while True:
        seen = await job(http, t, job_id)
        if seen["status"] == "succeeded":
            return seen
        assert seen["status"] in ("queued", "running"), seen
        assert time.monotonic() < deadline, seen
        await asyncio.sleep(0.2)


async def exported_ids(http: httpx.AsyncClient, done: dict[str, Any]) -> list[int]:
    """Event ids of the finished job's file."""
    r = await http.get(done["downloadUrl"])
    assert r.status_code == 200, r.text
    return [int(orjson.loads(line)["event_id"]) for line in gzip.decompress(r.content).splitlines()]
