"""The README's route → scope table, from the contract's per-RPC policies.

`python -m services.contract.scope_table` prints it."""

from __future__ import annotations

from google.api import annotations_pb2
from google.protobuf.descriptor import MethodDescriptor

from services.contract.compiled import contract


def _http(method: MethodDescriptor) -> str:
    rule = method.GetOptions().Extensions[annotations_pb2.http]
    verb = rule.WhichOneof("pattern")
    if verb is None:
        return "gRPC only"
    return f"`{verb.upper()} {getattr(rule, verb)}`"


def scope_table() -> str:
    """The route → scope table of the README (markdown), straight from the protos."""
    lines = ["| route | RPC | scope | plan feature |", "|---|---|---|---|"]
    for m in contract().methods:
        options = m.options
        scope = "public (its own token)" if options.public else f"`{options.scope}`"
        feature = f"`{options.feature}`" if options.feature else ""
        lines.append(
            f"| {_http(m.method)} | `{m.descriptor.name}.{m.method.name}` | {scope} | {feature} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(scope_table())
