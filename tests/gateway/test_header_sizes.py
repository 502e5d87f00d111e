"""Forwarded headers too large for gRPC metadata: 431 in the envelope naming the header."""

from __future__ import annotations

import httpx
import pytest

from services.grpc_server.metadata_limits import MAX_VALUE_BYTES

pytestmark = pytest.mark.asyncio(loop_scope="session")

OVERVIEW = "/api/analytics/workspace/overview?days=7"


@pytest.mark.parametrize("size", [MAX_VALUE_BYTES + 1, 9_000, 17_000, 64_000])
@pytest.mark.parametrize("header", ["Authorization", "X-Workspace-Id"])
async def test_oversized_forwarded_header_is_431_naming_it(
    gateway_url: str, backend, header: str, size: int
) -> None:
    backend.recorder.metadata.pop("GetWorkspaceOverview", None)
    value = "Bearer " + "k" * (size - 7) if header == "Authorization" else "7" * size
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as client:
        r = await client.get(OVERVIEW, headers={header: value})
    assert r.status_code == 431, r.text
    assert r.json() == {
        "success": False,
        "error": {
            "code": "request_header_too_large",
            "message": f"header '{header.lower()}' is larger than {MAX_VALUE_BYTES} bytes",
            "field": header.lower(),
        },
    }
    assert "GetWorkspaceOverview" not in backend.recorder.metadata  # never forwarded


async def test_a_header_at_the_limit_is_forwarded(gateway_url: str, backend) -> None:
    value = "Bearer " + "k" * (MAX_VALUE_BYTES - 7)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as client:
        r = await client.get(OVERVIEW, headers={"Authorization": value})
    assert r.status_code == 200, r.text
    assert dict(backend.recorder.metadata["GetWorkspaceOverview"])["authorization"] == value
