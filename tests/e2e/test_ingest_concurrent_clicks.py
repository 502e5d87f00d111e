"""Concurrent `POST /api/track/click` requests, which the gateway gathers into TrackClicks calls:
every request gets TrackClick's own answer, every accepted click is counted once, each spends one
request of the rate limit."""

from __future__ import annotations

import asyncio
import time

from services import protos
from services.stores.clickhouse import ClickHouse

CLICK = "/api/track/click"


async def _clicks(ch: ClickHouse, workspace_id: int) -> int:
    rows = await ch.fetch(
        "SELECT count() FROM clicks WHERE workspace_id = %(w)s", {"w": workspace_id}
    )
    return int(rows[0][0])


async def test_concurrent_clicks_get_their_own_answers(system, http, ch, tenant):
    t = await tenant()
    bodies = []
    for n in range(60):
        body: dict = {"linkId": t.link_ids[n % len(t.link_ids)], "country": "DE"}
        if n % 10 == 3:
            body["country"] = "Germany"  # invalid: 400 naming the bare field
        if n % 10 == 5:
            body["linkId"] = 10**12  # not a link of the workspace: 404
        if n % 10 == 7:
            body["eventId"] = 777  # six requests share one client id: counted once
        bodies.append(body)
    answers = await asyncio.gather(*(http.post(CLICK, json=b, headers=t.headers) for b in bodies))
    alone = {
        3: await http.post(CLICK, json=bodies[3], headers=t.headers),
        5: await http.post(CLICK, json=bodies[5], headers=t.headers),
    }
    for n, answer in enumerate(answers):
        if n % 10 in alone:
            assert answer.status_code == alone[n % 10].status_code, answer.text
            assert answer.json() == alone[n % 10].json()
        else:
            assert answer.status_code == 200, answer.text
            assert answer.json()["data"]["accepted"] == 1
    shared = [answers[n].json()["data"] for n in range(60) if n % 10 == 7]
    assert all(d["eventIds"] == [777] for d in shared)
    assert sorted(d["duplicates"] for d in shared) == [0, 1, 1, 1, 1, 1]
    ids = [answers[n].json()["data"]["eventIds"][0] for n in range(60) if n % 10 not in (3, 5, 7)]
    assert len(set(ids)) == len(ids) == 42
    await system.drained()
    assert await _clicks(ch, t.workspace_id) == 43


async def test_each_click_spends_one_request_of_the_limit(system, http, ch, tenant):
    t = await tenant(plan="free")  # 60 requests a minute
    began = time.monotonic()
    answers = await asyncio.gather(
        *(http.post(CLICK, json={"linkId": t.link_ids[0]}, headers=t.headers) for _ in range(80))
    )
    # The bucket refills a request a second: a slow machine's burst is granted that much more.
    refilled = int(time.monotonic() - began) + 1
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) == {200, 429}, statuses
    assert 55 <= statuses.count(200) <= 60 + refilled, (statuses.count(200), refilled)
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json()["error"]["code"] == "rate_limited" and refused.headers["retry-after"]
    assert all("x-ratelimit-remaining" in a.headers for a in answers)
    await system.drained()
    assert await _clicks(ch, t.workspace_id) == statuses.count(200)


async def test_track_clicks_reports_each_click(system, tenant):
    t = await tenant()
    events = [
        protos.live_pb2.ClickEvent(link_id=t.link_ids[0], event_id=31),
        protos.live_pb2.ClickEvent(link_id=t.link_ids[0], country="Germany"),
        protos.live_pb2.ClickEvent(link_id=t.link_ids[1], event_id=31),
        protos.live_pb2.ClickEvent(link_id=10**12),
        protos.live_pb2.ClickEvent(link_id=t.link_ids[1], timestamp="2026-11-02 09:30:00"),
    ]
    async with system.channel("live") as channel:
        stub = protos.live_pb2_grpc.LiveServiceStub(channel)
        reply = await stub.TrackClicks(
            protos.live_pb2.TrackClicksRequest(events=events), metadata=t.metadata
        )
    got = [(c.taken, c.duplicate) for c in reply.clicks]
    assert got == [(True, False), (False, False), (True, True), (False, False), (True, False)]
    assert reply.clicks[0].event_id == reply.clicks[2].event_id == 31
    assert reply.clicks[4].event_id > 0
