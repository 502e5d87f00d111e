"""ExportService: the contract is served; its RPCs arrive in a later release (UNIMPLEMENTED)."""

from __future__ import annotations

import grpc

from services import pb
from services.server.deps import Deps


class ExportServicer(pb.export_pb2_grpc.ExportServiceServicer):
    """Every RPC answers UNIMPLEMENTED until implemented here."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps


def register(server: grpc.aio.Server, deps: Deps) -> str:
    """Add the servicer to server; returns the service's full name."""
    pb.export_pb2_grpc.add_ExportServiceServicer_to_server(ExportServicer(deps), server)
    return "linkpulse.v1.ExportService"
