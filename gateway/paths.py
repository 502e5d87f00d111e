"""google.api.http path templates (they live in services.rpc.paths, shared with the workers)."""

from services.rpc.paths import (
    PathTemplate,
    PathVariable,
    match_order_key,
    openapi_path,
    parse_template,
    starlette_path,
)

__all__ = [
    "PathTemplate",
    "PathVariable",
    "match_order_key",
    "openapi_path",
    "parse_template",
    "starlette_path",
]
