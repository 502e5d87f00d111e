"""The gateway under uvicorn against a real grpc.aio backend, over loopback sockets."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _get(base: str, path: str, **kwargs) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        return await client.get(path, **kwargs)


async def test_success_envelope_with_int64_numbers(gateway_url: str, backend) -> None:
    big = backend.big
    response = await _get(
        gateway_url,
        "/api/analytics/workspace/overview?days=7&timezone=Europe/Paris&campaign_id=12",
        headers={
            "Authorization": "Bearer lp_test_key",
            "X-Request-Id": "req-123",
            "X-Workspace-Id": "ws_1",
        },
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-123"
    body = response.json()
    assert body["success"] is True
    assert body["data"]["totals"] == {
        "clicks": big,
        "uniqueVisitors": 3,
        "leads": 0,
        "sales": 0,
        "revenue": 12.5,
    }
    assert f'"clicks":{big}' in response.text  # a number, not a string
    assert body["data"]["meta"]["timezone"] == "Europe/Paris"
    request = backend.recorder.requests["GetWorkspaceOverview"]
    assert request.days == 7 and request.campaign_id == 12 and not request.HasField("limit")
    metadata = dict(backend.recorder.metadata["GetWorkspaceOverview"])
    assert metadata["authorization"] == "Bearer lp_test_key"
    assert metadata["x-request-id"] == "req-123"
    assert metadata["x-forwarded-for"] == "127.0.0.1"
    assert metadata["x-workspace-id"] == "ws_1"


async def test_path_variable_reaches_the_service(gateway_url: str) -> None:
    response = await _get(gateway_url, "/api/analytics/42/summary")
    assert response.status_code == 200
    assert response.json()["data"]["totals"]["clicks"] == 42


async def test_error_info_reason_and_field(gateway_url: str) -> None:
    response = await _get(gateway_url, "/api/analytics/workspace/timeseries?days=400")
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "error": {"code": "invalid_days", "message": "days must be at most 90", "field": "days"},
    }


async def test_plain_status_uses_the_status_name(gateway_url: str) -> None:
    response = await _get(gateway_url, "/api/analytics/workspace/usage")
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "permission_denied",
        "message": "missing scope analytics:read",
    }


async def test_unimplemented_rpc_is_501(gateway_url: str) -> None:
    response = await _get(gateway_url, "/api/analytics/funnel")
    assert response.status_code == 501
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == "unimplemented"


async def test_service_crash_is_500_without_details(gateway_url: str) -> None:
    response = await _get(gateway_url, "/api/analytics/overview")
    assert response.status_code == 500
    assert response.json()["error"] == {"code": "unknown", "message": "internal error"}
    assert "secret" not in response.text


async def test_deadline_is_504(gateway_url: str) -> None:
    response = await _get(gateway_url, "/api/analytics/workspace/regions")
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "deadline_exceeded"


async def test_unreachable_backend_is_503(gateway_url: str) -> None:
    response = await _get(gateway_url, "/api/analytics/audit-log")
    assert response.status_code == 503
    assert response.json()["error"] == {
        "code": "unavailable",
        "message": "the audit service is unavailable",
    }


async def test_seed_004_status_code_envelope(gateway_url: str, backend) -> None:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as client:
        response = await client.post(
            "/v1/analytics",
            json={"workspace_id": 24, "url_id": 501, "start": "2025-01-01", "end": "2025-01-07"},
        )
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "status_code": 200,
        "message": "",
        "data": [
            {
                "id": 7301,
                "workspace_id": 24,
                "organization_id": 0,
                "url_id": 501,
                "domain": "",
                "url_slug": "s",
                "device_type": "",
                "platform": "",
                "browser": "",
                "country": "",
                "referrer": "",
                "created_at": "",
                "is_bot": False,
            }
        ],
        "next_cursor": None,
    }
    assert backend.recorder.requests["GetRawEvents"].start == "2025-01-01"


async def test_http_body_passes_through_with_its_status(gateway_url: str) -> None:
    response = await _get(gateway_url, "/api/analytics/export?dataset=clicks&days=7")
    assert response.status_code == 202
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content == b"day,clicks\n2025-01-01,4\n"


async def test_healthz_reports_each_backend(gateway_url: str) -> None:
    response = await _get(gateway_url, "/healthz")
    assert response.status_code == 503
    body = response.json()
    age = body["data"].pop("ageSeconds")
    assert 0 <= age < 5
    assert body == {
        "success": True,
        "data": {
            "status": "degraded",
            "services": {
                "query": "SERVING",
                "live": "SERVING",
                "export": "SERVING",
                "audit": "UNAVAILABLE",
            },
        },
    }


def _ws_url(gateway_url: str, path: str) -> str:
    return gateway_url.replace("http://", "ws://") + path


async def test_websocket_streams_json_frames(gateway_url: str, backend) -> None:
    big = backend.big
    url = _ws_url(gateway_url, "/api/analytics/live/ws?linkId=5&token=lpl_tok_1")
    async with websockets.connect(url) as socket:
        frames = [json.loads(await socket.recv()) for _ in range(3)]
        with pytest.raises(websockets.ConnectionClosedOK):
            await socket.recv()
    assert [frame["eventId"] for frame in frames] == [big, big + 1, big + 2]
    assert frames[0]["linkId"] == 5 and frames[0]["kind"] == "click"
    assert dict(backend.recorder.metadata["Subscribe"])["authorization"] == "Bearer lpl_tok_1"
    assert backend.recorder.requests["Subscribe"].link_id == 5


async def test_websocket_error_frame_and_close_code(gateway_url: str) -> None:
    async with websockets.connect(_ws_url(gateway_url, "/api/analytics/live/ws")) as socket:
        frame = json.loads(await socket.recv())
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await socket.recv()
    assert frame == {
        "success": False,
        "error": {"code": "unauthenticated", "message": "missing bearer token"},
    }
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401

    headers = {"Authorization": "Bearer k"}
    url = _ws_url(gateway_url, "/api/analytics/live/ws?kind=fail")
    async with websockets.connect(url, additional_headers=headers) as socket:
        first = json.loads(await socket.recv())
        error = json.loads(await socket.recv())
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await socket.recv()
    assert first["eventId"] == 1
    assert error["error"]["code"] == "permission_denied"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_websocket_binding_error_closes_4400(gateway_url: str) -> None:
    url = _ws_url(gateway_url, "/api/analytics/live/ws?linkId=abc&token=lpl_t")
    async with websockets.connect(url) as socket:
        frame = json.loads(await socket.recv())
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await socket.recv()
    assert frame["error"]["message"] == "query parameter 'linkId' must be an integer"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400


async def test_client_disconnect_cancels_the_call(gateway_url: str, backend) -> None:
    backend.recorder.stream_cancelled.clear()
    url = _ws_url(gateway_url, "/api/analytics/live/ws?kind=forever&token=lpl_t")
    async with websockets.connect(url) as socket:
        for _ in range(2):
            await socket.recv()
    await asyncio.wait_for(backend.recorder.stream_cancelled.wait(), timeout=5)
