"""The compiled contract: generated protobuf and gRPC modules of linkpulse.v1."""

from __future__ import annotations

import sys
from pathlib import Path

# protoc emits `from linkpulse.v1 import ...`, so the generated tree is an import root.
_GENERATED = str(Path(__file__).resolve().parent / "_generated")
if _GENERATED not in sys.path:
    sys.path.insert(0, _GENERATED)

from linkpulse.v1 import (  # noqa: E402
    analytics_query_pb2,
    audit_pb2,
    audit_pb2_grpc,
    common_pb2,
    dashboard_pb2,
    export_pb2,
    export_pb2_grpc,
    live_pb2,
    live_pb2_grpc,
    options_pb2,
    query_pb2,
    query_pb2_grpc,
)

SERVICE_MODULES = {
    "query": (query_pb2, query_pb2_grpc, "QueryService"),
    "live": (live_pb2, live_pb2_grpc, "LiveService"),
    "export": (export_pb2, export_pb2_grpc, "ExportService"),
    "audit": (audit_pb2, audit_pb2_grpc, "AuditService"),
}
# The service keys ("query", "live", "export", "audit"): one gRPC process each.
SERVICES = tuple(SERVICE_MODULES)

__all__ = [
    "analytics_query_pb2",
    "SERVICES",
    "SERVICE_MODULES",
    "audit_pb2",
    "audit_pb2_grpc",
    "common_pb2",
    "dashboard_pb2",
    "export_pb2",
    "export_pb2_grpc",
    "live_pb2",
    "live_pb2_grpc",
    "options_pb2",
    "query_pb2",
    "query_pb2_grpc",
]
