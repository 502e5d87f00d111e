"""Redis outages: SIGKILL + restart, frozen (SIGSTOP), clean stop; resends give exact counts."""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest

from tests.chaos.conftest import (
    Sender,
    Stack,
    Tenant,
    assert_envelope,
    assert_exact,
    clicks,
    until,
)

TRACK = "/api/track/click"


async def _track(http: httpx.AsyncClient, t: Tenant, event_id: int) -> httpx.Response:
    body = {"linkId": t.link_ids[0], "eventId": event_id, "timestamp": "2026-03-02T12:00:00Z"}
    return await http.post(TRACK, json=body, headers=t.headers)


async def _track_until_accepted(http: httpx.AsyncClient, t: Tenant, event_id: int) -> int:
    """POST one click until it is accepted; the refusals met (each in the envelope)."""
    refusals = 0
    for _ in range(300):
        try:
            r = await _track(http, t, event_id)
        except httpx.TimeoutException:
            refusals += 1
            continue
        assert_envelope(r, (200, 503, 504))
        if r.status_code == 200:
            return refusals
        refusals += 1
        await asyncio.sleep(0.2)
    raise AssertionError(f"click {event_id} never accepted")


@pytest.mark.fault("redis", "SIGKILL during ingest, restart")
async def test_redis_killed_during_ingest(healthy: Stack, http, tenant, note) -> None:
    stack = healthy
    t = await tenant()
    sender = Sender(stack.settings.live_addr, t)
    events = clicks(t, 4_000_000, 20_000)
    sending = asyncio.create_task(sender.send_all(events, per_request=250, pause=0.05))
    await asyncio.sleep(1.0)
    stack.redis.kill()
    r = await _track(http, t, 4_900_000)
    assert_envelope(r, (503,))
    note(f"track while down: {r.status_code} {r.json()['error']['code']}")
    await asyncio.sleep(2)
    stack.redis.start()
    await sending
    refusals = await _track_until_accepted(http, t, 4_900_000)
    note(f"{sender.summary()}; REST refusals after restart: {refusals}")
    await assert_exact(stack, t, len(events) + 1, note)


@pytest.mark.fault("redis", "SIGSTOP (frozen) during ingest, SIGCONT")
async def test_redis_frozen_during_ingest(healthy: Stack, http, tenant, note) -> None:
    stack = healthy
    t = await tenant()
    sender = Sender(stack.settings.live_addr, t, deadline=2.0)
    events = clicks(t, 5_000_000, 10_000)
    sending = asyncio.create_task(sender.send_all(events, per_request=250, pause=0.05))
    await asyncio.sleep(1.0)
    stack.redis.signal(signal.SIGSTOP)
    try:
        try:
            r = await _track(http, t, 5_900_000)
            assert_envelope(r, (503, 504))
            note(f"track while frozen: {r.status_code}")
        except httpx.TimeoutException:
            note("track while frozen: client timeout")
        await asyncio.sleep(3)
    finally:
        stack.redis.signal(signal.SIGCONT)
    await sending
    refusals = await _track_until_accepted(http, t, 5_900_000)
    note(f"{sender.summary()}; REST refusals after thaw: {refusals}")
    await assert_exact(stack, t, len(events) + 1, note)


@pytest.mark.fault("redis", "clean stop: ingest refused with 503, restart")
async def test_redis_stopped_ingest_is_503_then_recovers(
    healthy: Stack, http, tenant, note
) -> None:
    stack = healthy
    t = await tenant()
    sender = Sender(stack.settings.live_addr, t)
    await sender.send(clicks(t, 6_000_000, 100))
    stack.redis.shutdown()
    try:
        r = await _track(http, t, 6_900_000)
        assert_envelope(r, (503,))
        note(f"track while stopped: 503 '{r.json()['error']['message'][:60]}'")
    finally:
        stack.redis.start()
    refusals = await _track_until_accepted(http, t, 6_900_000)
    await sender.send(clicks(t, 6_000_100, 100))
    note(f"REST refusals after restart: {refusals}")
    await assert_exact(stack, t, 201, note)


@pytest.mark.fault("redis", "clean stop: /live and /live/stats answer 503")
async def test_redis_stopped_live_routes_are_503(healthy: Stack, http, tenant, note) -> None:
    stack = healthy
    t = await tenant()
    stack.redis.shutdown()
    try:
        for path in ("/api/analytics/live", "/api/analytics/live/stats"):
            r = await http.get(path, headers=t.headers)
            note(f"{path}: {r.status_code}")
            assert_envelope(r, (503,))
    finally:
        stack.redis.start()

    async def answers() -> bool:
        r = await http.get("/api/analytics/live", headers=t.headers)
        assert_envelope(r)
        return r.status_code == 200

    await until("/live answering again", answers, 30)


@pytest.mark.fault("redis", "SIGKILL + restart: the worker runs jobs again")
async def test_worker_survives_redis_outage(healthy: Stack, http, tenant, note) -> None:
    stack = healthy
    t = await tenant()
    await Sender(stack.settings.live_addr, t).send(clicks(t, 7_000_000, 2_000))
    await stack.drained()
    stack.redis.kill()
    await asyncio.sleep(3)
    stack.redis.start()
    await asyncio.sleep(2)
    down = stack.down()
    note(f"not running after the outage: {', '.join(down) or 'none'}")
    assert not down, f"exited on the Redis outage: {down}"
    params = {"dataset": "clicks", "start": "2026-03-02", "end": "2026-03-02", "timezone": "UTC"}

    async def submitted() -> bool:
        r = await http.post("/api/analytics/exports", params=params, headers=t.headers)
        assert_envelope(r, (202, 503))
        return r.status_code == 202

    await until("an export accepted", submitted, 30)
    r = await http.post("/api/analytics/exports", params=params, headers=t.headers)
    job_id = r.json()["data"]["id"]

    async def done() -> bool:
        r = await http.get(f"/api/analytics/exports/{job_id}", headers=t.headers)
        job = r.json()["data"]
        assert job["status"] in ("queued", "running", "succeeded"), job
        return bool(job["status"] == "succeeded" and job["rowsWritten"] == 2_000)

    await until("the export done", done, 60)
