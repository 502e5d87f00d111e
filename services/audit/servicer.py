"""AuditService: the contract is served; its RPCs arrive in a later release (UNIMPLEMENTED)."""

from __future__ import annotations

import grpc

from services import pb
from services.server.deps import Deps


class AuditServicer(pb.audit_pb2_grpc.AuditServiceServicer):
    """Every RPC answers UNIMPLEMENTED until implemented here."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps


def register(server: grpc.aio.Server, deps: Deps) -> str:
    """Add the servicer to server; returns the service's full name."""
    pb.audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(deps), server)
    return "linkpulse.v1.AuditService"
