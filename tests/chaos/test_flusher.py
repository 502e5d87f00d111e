"""Flusher crashes: SIGKILL while batches flow, and between a batch's insert and its ack."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from tests import ingest_streams
from tests.chaos.conftest import Sender, Stack, assert_exact, clicks, stored, until


@pytest.mark.fault("flusher", "SIGKILL mid-batch, restart")
async def test_flusher_killed_mid_batch(healthy: Stack, tenant, note) -> None:
    stack = healthy
    t = await tenant()
    sender = Sender(stack.settings.live_addr, t)
    events = clicks(t, 1_000_000, 30_000)
    sending = asyncio.create_task(sender.send_all(events, per_request=1_000))

    async def some_stored() -> bool:
        return (await stored(stack, t.workspace_id))[0] >= 2_000

    await until("the first batches in ClickHouse", some_stored)
    stack.kill("flusher")
    at_kill = (await stored(stack, t.workspace_id))[0]
    note(f"killed with {at_kill} of {len(events)} stored")
    await asyncio.sleep(1)
    stack.start("flusher")
    await sending
    await assert_exact(stack, t, len(events), note)


@pytest.mark.fault("flusher", "SIGKILL between ClickHouse insert and stream ack")
async def test_flusher_killed_between_insert_and_ack(healthy: Stack, tenant, note) -> None:
    stack = healthy
    t = await tenant()
    stack.stop("flusher")
    # This flusher inserts its first batch, then sleeps before acknowledging it.
    stack.start("flusher", FLUSHER_BATCH_SIZE="2000", FLUSHER_PAUSE_AFTER_INSERT_MS="600000")
    sender = Sender(stack.settings.live_addr, t)
    events = clicks(t, 2_000_000, 6_000)
    await sender.send(events[:1_500])

    async def first_inserted() -> bool:
        return (await stored(stack, t.workspace_id))[0] >= 1_500

    await until("the first batch insert", first_inserted)
    await sender.send_all(events[1_500:], per_request=500)
    redis = Redis.from_url(stack.settings.redis_url)
    try:
        pending = await ingest_streams.pending(redis, stack.settings)
    finally:
        await redis.aclose()
    assert pending >= 1  # inserted, not acknowledged
    stack.kill("flusher")
    note(f"killed holding {pending} unacknowledged entries already inserted")
    stack.start("flusher")  # the normal flusher, which claims the dead one's entries
    await assert_exact(stack, t, len(events), note)
