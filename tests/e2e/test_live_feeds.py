"""Live feeds end to end: events ingested over REST and gRPC reach the list, the WebSocket,
a resumed Subscribe and the live stats of their own workspace, and never another's."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
import websockets

from services import protos
from services.admin import links

# The servicer does not route ListLive, Subscribe and GetLiveStats to services.live.feed yet.


async def _frames(socket: websockets.ClientConnection, count: int) -> list[dict]:
    frames: list[dict] = []
    async with asyncio.timeout(10):
        while len(frames) < count:
            frame = json.loads(await socket.recv())
            if frame.get("type") != "heartbeat":
                frames.append(frame)
    return frames


async def test_ingested_events_reach_every_feed_of_their_workspace_only(
    system, http, tenant
) -> None:
    a = await tenant()
    b = await tenant()
    ws_url = system.gateway_url.replace("http://", "ws://") + "/api/analytics/live/ws"
    minted = await http.post("/api/analytics/live/token", json={}, headers=a.headers)
    assert minted.status_code == 200, minted.text
    live_token = minted.json()["data"]["token"]
    async with (
        websockets.connect(f"{ws_url}?token={live_token}") as feed_a,
        websockets.connect(ws_url, additional_headers=b.headers) as feed_b,
        system.channel("live") as channel,
    ):
        await asyncio.sleep(0.3)  # the subscriptions have started
        ids: list[int] = []
        for link_id in (a.link_ids[0], a.link_ids[1], a.link_ids[0]):
            r = await http.post(
                "/api/track/click", json={"linkId": link_id, "country": "DE"}, headers=a.headers
            )
            assert r.status_code == 200, r.text
            ids += [int(i) for i in r.json()["data"]["eventIds"]]
        stub = protos.live_pb2_grpc.LiveServiceStub(channel)
        batch = protos.live_pb2.IngestRequest(
            events=[
                protos.live_pb2.ClickEvent(link_id=a.link_ids[1], visitor_id=f"v{i}")
                for i in range(2)
            ]
        )
        ids += list((await stub.Ingest(batch, metadata=a.metadata)).event_ids)
        r = await http.post("/api/track/click", json={"linkId": b.link_ids[0]}, headers=b.headers)
        other = [int(i) for i in r.json()["data"]["eventIds"]]

        pushed = await _frames(feed_a, 5)
        assert [int(f["eventId"]) for f in pushed] == ids
        assert {int(f["linkId"]) for f in pushed} <= set(a.link_ids)
        assert all(f["cursor"] for f in pushed)
        assert [int(f["eventId"]) for f in await _frames(feed_b, 1)] == other

        # GET /live: newest first, filtered, never another workspace's events
        r = await http.get("/api/analytics/live", params={"limit": 500}, headers=a.headers)
        assert r.status_code == 200 and r.headers.get("x-cache") is None
        listed = [int(e["eventId"]) for e in r.json()["data"]["events"]]
        assert listed == list(reversed(ids))
        r = await http.get(
            "/api/analytics/live", params={"linkId": a.link_ids[1], "limit": 2}, headers=a.headers
        )
        page = r.json()["data"]
        assert [int(e["eventId"]) for e in page["events"]] == [ids[4], ids[3]]
        r = await http.get(
            "/api/analytics/live",
            params={"linkId": a.link_ids[1], "cursor": page["nextCursor"]},
            headers=a.headers,
        )
        assert [int(e["eventId"]) for e in r.json()["data"]["events"]] == [ids[1]]
        r = await http.get("/api/analytics/live", params={"limit": 500}, headers=b.headers)
        assert [int(e["eventId"]) for e in r.json()["data"]["events"]] == other

        # a resumed Subscribe misses nothing after its cursor
        resumed = stub.Subscribe(
            protos.live_pb2.LiveRequest(cursor=pushed[1]["cursor"]), metadata=a.metadata
        )
        got = []
        async with asyncio.timeout(10):
            async for event in resumed:
                got.append(event.event_id)
                if len(got) == 3:
                    break
        resumed.cancel()
        assert got == ids[2:]

        r = await http.get("/api/analytics/live/stats", headers=a.headers)
        stats = r.json()["data"]
        assert int(stats["clicksLast1m"]) == 5 and int(stats["clicksLast30m"]) == 5
        assert stats["topLinks"][0]["key"] == str(a.link_ids[1])


async def test_subscribe_rejects_an_unknown_kind(system, tenant) -> None:
    a = await tenant()
    async with system.channel("live") as channel:
        stub = protos.live_pb2_grpc.LiveServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            async for _ in stub.Subscribe(
                protos.live_pb2.LiveRequest(kind="visit"), metadata=a.metadata
            ):
                pass
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_a_link_or_campaign_outside_the_workspace_is_404_on_every_live_read(
    system, http, pg, tenant
) -> None:
    a = await tenant()
    b = await tenant()
    theirs = await links.create_group(pg, "campaigns", b.workspace_id, "theirs")
    mine = await links.create_group(pg, "campaigns", a.workspace_id, "mine")
    cases = [
        ("linkId", b.link_ids[0]),  # another workspace's link
        ("linkId", 2**40),  # no such link
        ("campaignId", theirs),
        ("campaignId", 2**40),
    ]
    for path in ("/api/analytics/live", "/api/analytics/live/stats"):
        for name, value in cases:
            r = await http.get(path, params={name: value}, headers=a.headers)
            assert r.status_code == 404, (path, name, value, r.text)
            error = r.json()["error"]
            assert r.json()["success"] is False and error["code"] == "not_found", error
            assert str(value) in error["message"], error
        for name, value in (("linkId", a.link_ids[0]), ("campaignId", mine)):
            r = await http.get(path, params={name: value}, headers=a.headers)
            assert r.status_code == 200, (path, name, r.text)
    async with system.channel("live") as channel:
        stub = protos.live_pb2_grpc.LiveServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            async for _ in stub.Subscribe(
                protos.live_pb2.LiveRequest(link_id=b.link_ids[0]), metadata=a.metadata
            ):
                pass
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
