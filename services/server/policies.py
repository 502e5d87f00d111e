"""Per-RPC policy (scope, feature, public) read from the (linkpulse.v1.route) method options.

`python -m services.server.policies` prints the route → scope table the README holds."""

from __future__ import annotations

from google.api import annotations_pb2

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


def _http(method: object) -> str:
    rule = method.GetOptions().Extensions[annotations_pb2.http]  # type: ignore[attr-defined]
    verb = rule.WhichOneof("pattern")
    if verb is None:
        return "gRPC only"
    return f"`{verb.upper()} {getattr(rule, verb)}`"


def scope_table() -> str:
    """The route → scope table of the README (markdown), straight from the protos."""
    lines = ["| route | RPC | scope | plan feature |", "|---|---|---|---|"]
    for module, _grpc, service_name in pb.SERVICE_MODULES.values():
        service = module.DESCRIPTOR.services_by_name[service_name]
        for method in service.methods:
            options = method.GetOptions().Extensions[pb.options_pb2.route]
            scope = "public (its own token)" if options.public else f"`{options.scope}`"
            feature = f"`{options.feature}`" if options.feature else ""
            lines.append(
                f"| {_http(method)} | `{service.name}.{method.name}` | {scope} | {feature} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(scope_table())
