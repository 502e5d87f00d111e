"""The handler table that the servicer and batch queries run."""

from __future__ import annotations

import pytest

from services import protos
from services.errors import ApiError
from services.query.handlers import HANDLERS, Call


async def test_the_handlers_refuse_before_doing_anything() -> None:
    """Servicer and batch run HANDLERS: an unhonoured field fails before any store is touched."""
    for rpc, request in (
        ("GetWorkspaceTimeseries", protos.common_pb2.AnalyticsQuery(sort="leads")),
        ("GetWorkspaceOverview", protos.common_pb2.AnalyticsQuery(limit=5)),
        ("GetWorkspaceUsage", protos.common_pb2.AnalyticsQuery(days=7)),
    ):
        with pytest.raises(ApiError) as refused:
            await HANDLERS[rpc](None, Call(None, lambda: None), request)  # type: ignore[arg-type]
        assert "is not supported by this route" in refused.value.message
