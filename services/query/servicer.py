"""QueryService: every RPC served by its plain handler (services.query.handlers)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from services import protos
from services.auth import principal
from services.auth.principal import Principal
from services.grpc_server.trailers import NO_STORE_TRAILER
from services.query.handlers import HANDLERS, Call, Handler, QueryDeps
from services.stores.deps import Deps

Rpc = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Message]]


def _caller() -> Principal | None:
    """The authenticated caller; None in public RPCs (the interceptor binds none)."""
    try:
        return principal.current()
    except LookupError:
        return None


class QueryServicer(protos.query_pb2_grpc.QueryServiceServicer):
    """Workspace, link and conversion analytics."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._query = QueryDeps.of(deps)
        for name, handler in HANDLERS.items():
            setattr(self, name, self._rpc(handler))

    def _rpc(self, handler: Handler) -> Rpc:
        """The gRPC method of handler: answers from the fallback are marked no-store."""

        async def rpc(request: Any, context: grpc.aio.ServicerContext) -> Message:
            def no_store() -> None:
                context.set_trailing_metadata(((NO_STORE_TRAILER, "1"),))

            return await handler(self._query, Call(_caller(), no_store), request)

        return rpc


def register(server: grpc.aio.Server, deps: Deps) -> str:
    """Add the servicer to server; returns the service's full name."""
    protos.query_pb2_grpc.add_QueryServiceServicer_to_server(QueryServicer(deps), server)
    return "linkpulse.v1.QueryService"
