"""AuditService: Record (for the other services) and ListAuditLog over the hash-chained log."""

from __future__ import annotations

import grpc

from services import errors, protos
from services.audit import listing
from services.auditlog.recorder import OUTCOMES, append
from services.auth import principal
from services.stores.deps import Deps

# Longest accepted value of each recorded text field.
FIELD_LIMITS = {
    "actor": 200,
    "action": 100,
    "target": 1000,
    "request_id": 128,
    "source_address": 64,
}


def _check_lengths(request: protos.audit_pb2.RecordRequest) -> None:
    for name, limit in FIELD_LIMITS.items():
        if len(getattr(request, name)) > limit:
            raise errors.invalid_argument(name, f"{name} is longer than {limit} characters")


class AuditServicer(protos.audit_pb2_grpc.AuditServiceServicer):
    """Appends to and reads the caller's workspace's audit log."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def Record(self, request, context):  # noqa: N802, ANN001
        caller = principal.current()
        if not request.action.strip():
            raise errors.invalid_argument("action", "action is required")
        _check_lengths(request)
        outcome = request.outcome or "success"
        if outcome not in OUTCOMES:
            allowed = ", ".join(OUTCOMES)
            raise errors.invalid_argument("outcome", f"outcome must be one of {allowed}")
        entry = await append(
            self.deps.pg,
            workspace_id=caller.workspace_id,
            actor=request.actor or caller.actor,
            action=request.action.strip(),
            target=request.target,
            outcome=outcome,
            request_id=request.request_id,
            source_address=request.source_address,
        )
        return listing.to_message(entry)

    async def ListAuditLog(self, request, context):  # noqa: N802, ANN001
        return await listing.list_entries(self.deps.pg, principal.current().workspace_id, request)


def register(server: grpc.aio.Server, deps: Deps) -> str:
    """Add the servicer to server; returns the service's full name."""
    protos.audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(deps), server)
    return "linkpulse.v1.AuditService"
