"""Per-RPC policy (scope, feature, public) read from the (linkpulse.v1.route) method options."""

from __future__ import annotations

from services import pb


def route_policies() -> dict[str, pb.options_pb2.RouteOptions]:
    """Full gRPC method path (/linkpulse.v1.QueryService/GetOverview) to its RouteOptions."""
    table = {}
    for module, _grpc, service_name in pb.SERVICE_MODULES.values():
        service = module.DESCRIPTOR.services_by_name[service_name]
        for method in service.methods:
            options = method.GetOptions().Extensions[pb.options_pb2.route]
            table[f"/{service.full_name}/{method.name}"] = options
    return table
