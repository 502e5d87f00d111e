"""`POST /api/track/batch`: gRPC `Ingest` over REST, with its validation, scope and dedup."""

from __future__ import annotations

import grpc
import pytest

from services import protos
from services.stores.clickhouse import ClickHouse

BATCH = "/api/track/batch"


async def _clicks(ch: ClickHouse, workspace_id: int) -> int:
    rows = await ch.fetch(
        "SELECT count() FROM clicks WHERE workspace_id = %(w)s", {"w": workspace_id}
    )
    return int(rows[0][0])


async def test_batch_is_counted_once_per_event_id(system, http, ch, tenant):
    t = await tenant()
    events = [
        {"linkId": t.link_ids[0], "timestamp": "2026-11-02T08:00:00Z", "country": "de"},
        {"linkId": str(t.link_ids[1]), "eventId": "9001", "ip": "81.2.69.160"},
        {"link_id": t.link_ids[1], "event_id": 9001},  # proto names; a duplicate of the above
        {"linkId": t.link_ids[0], "timestamp": "2026-11-02 09:30:00"},  # a looser time form
    ]
    r = await http.post(BATCH, json={"events": events}, headers=t.headers)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["accepted"] == 4 and data["duplicates"] == 1
    assert data["eventIds"][1:3] == [9001, 9001] and len(set(data["eventIds"])) == 3
    again = await http.post(BATCH, json={"events": events[1:2]}, headers=t.headers)
    assert again.json()["data"] == {"accepted": 1, "eventIds": [9001], "duplicates": 1}
    await system.drained()
    assert await _clicks(ch, t.workspace_id) == 3
    rows = await ch.fetch(
        "SELECT country FROM clicks WHERE workspace_id = %(w)s AND event_id = 9001",
        {"w": t.workspace_id},
    )
    assert rows == [("GB",)]  # found from the address


async def test_an_invalid_event_fails_the_batch_like_grpc(system, http, ch, tenant):
    t = await tenant()
    events = [
        protos.live_pb2.ClickEvent(link_id=t.link_ids[0]),
        protos.live_pb2.ClickEvent(link_id=t.link_ids[0], country="Germany"),
    ]
    body = {"events": [{"linkId": t.link_ids[0]}, {"linkId": t.link_ids[0], "country": "Germany"}]}
    r = await http.post(BATCH, json=body, headers=t.headers)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_argument" and "events[1].country" in error["message"]
    async with system.channel("live") as channel:
        stub = protos.live_pb2_grpc.LiveServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await stub.Ingest(protos.live_pb2.IngestRequest(events=events), metadata=t.metadata)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failed.value.details() == error["message"]
    unknown = {"events": [{"linkId": t.link_ids[0]}, {"linkId": 10**12}]}
    r = await http.post(BATCH, json=unknown, headers=t.headers)
    assert r.status_code == 404 and "events[1].link_id" in r.text
    for empty in ({}, {"events": []}):
        r = await http.post(BATCH, json=empty, headers=t.headers)
        assert r.status_code == 400 and "events" in r.json()["error"]["message"]
    r = await http.post(BATCH, json={"events": [{"linkId": 1.5}]}, headers=t.headers)
    assert r.status_code == 400 and "events.linkId" in r.json()["error"]["message"]
    await system.drained()
    assert await _clicks(ch, t.workspace_id) == 0


async def test_batch_needs_events_write(system, http, tenant):
    reader = await tenant(scopes=("analytics:read",))
    body = {"events": [{"linkId": reader.link_ids[0]}]}
    r = await http.post(BATCH, json=body, headers=reader.headers)
    assert r.status_code == 403 and "events:write" in r.json()["error"]["message"]
    assert (await http.post(BATCH, json=body)).status_code == 401


async def test_openapi_documents_the_batch_route(system, http):
    document = (await http.get("/openapi.json")).json()
    operation = document["paths"][BATCH]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert "IngestRequest" in str(schema)
    assert "200" in operation["responses"] and "400" in operation["responses"]
    assert "events:write" in str(operation)
