"""Oversized credentials: 431 at the gateway, INVALID_ARGUMENT from the services, never 429."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from services import protos
from services.errors import STATUS_DETAILS_KEY
from services.grpc_server.metadata_limits import MAX_VALUE_BYTES

OVERVIEW = "/api/analytics/workspace/overview"


@pytest.mark.parametrize("size", [9_000, 17_000, 100_000])
async def test_gateway_refuses_an_oversized_authorization_with_431(http, size) -> None:
    r = await http.get(OVERVIEW, headers={"Authorization": "Bearer lp_" + "x" * size})
    assert r.status_code == 431, r.text
    error = r.json()["error"]
    assert error["code"] == "request_header_too_large" and error["field"] == "authorization"
    assert "metadata" not in error["message"]


def _reason(error: grpc.aio.AioRpcError) -> str:
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY:
            info = error_details_pb2.ErrorInfo()
            status_pb2.Status.FromString(value).details[0].Unpack(info)
            return info.reason
    return ""


@pytest.mark.parametrize("size", [MAX_VALUE_BYTES + 1, 9_000, 17_000, 100_000])
async def test_services_refuse_oversized_metadata_with_invalid_argument(system, size) -> None:
    async with system.channel("query") as channel:
        stub = protos.query_pb2_grpc.QueryServiceStub(channel)
        for _ in range(3):  # gRPC's own limits refused some of these at random
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.GetWorkspaceOverview(
                    protos.common_pb2.AnalyticsQuery(),
                    metadata=(("authorization", "Bearer lp_" + "x" * size),),
                )
            assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT, raised.value
            assert _reason(raised.value) == "request_header_too_large"
            assert raised.value.details() == (
                f"header 'authorization' is larger than {MAX_VALUE_BYTES} bytes"
            )
