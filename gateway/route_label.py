"""The route a request is labelled with in metrics, spans and log lines: the template the router
matched (`/api/analytics/{link_id}/summary`), never the raw path, which may carry ids and
tokens."""

from __future__ import annotations

from starlette.types import Scope

# The label of a request no route matched (a 404).
OTHER_ROUTE = "other"


def route_template(scope: Scope) -> str:
    """The path template of the route the router matched for scope (it records the route in
    the scope it was handed), else OTHER_ROUTE."""
    return getattr(scope.get("route"), "path", None) or OTHER_ROUTE
