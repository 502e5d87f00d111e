"""QueryService: binds each RPC to its preset. RPCs not overridden here answer UNIMPLEMENTED."""

from __future__ import annotations

import grpc

from services import pb
from services.auth import principal
from services.query import params, presets
from services.server.deps import Deps


class QueryServicer(pb.query_pb2_grpc.QueryServiceServicer):
    """Workspace, link and conversion analytics over ClickHouse."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def _context(self, request: pb.common_pb2.AnalyticsQuery) -> params.QueryContext:
        return await params.resolve(self.deps, principal.current(), request)

    async def GetWorkspaceOverview(self, request, context):  # noqa: N802, ANN001
        return await presets.overview(self.deps.ch, await self._context(request))

    async def GetWorkspaceTimeseries(self, request, context):  # noqa: N802, ANN001
        return await presets.timeseries(self.deps.ch, await self._context(request))


def register(server: grpc.aio.Server, deps: Deps) -> str:
    """Add the servicer to server; returns the service's full name."""
    pb.query_pb2_grpc.add_QueryServiceServicer_to_server(QueryServicer(deps), server)
    return "linkpulse.v1.QueryService"
