"""GET /docs: the interactive API reference, Swagger UI rendering /openapi.json.

Swagger UI's files come from the installed `swagger_ui_bundle` package and are served under
/docs/assets/; the page's own initializer and stylesheet are gateway/static files: nothing is
loaded from anywhere else, and a strict Content-Security-Policy (no inline script, requests to
this origin only) keeps it so. "Try it out" sends the bearer token entered under "Authorize"
to this gateway."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.http_errors import GatewayError
from gateway.responses import error_response
from gateway.static_assets import asset_path

PATH = "/docs"
ASSETS = f"{PATH}/assets"

_SWAGGER_UI = Path(swagger_ui_bundle.swagger_ui_path)
# Swagger UI's files the page uses.
_FILES: dict[str, Path] = {
    "swagger-ui.css": _SWAGGER_UI / "swagger-ui.css",
    "swagger-ui-bundle.js": _SWAGGER_UI / "swagger-ui-bundle.js",
    "favicon-32x32.png": _SWAGGER_UI / "favicon-32x32.png",
    "favicon-16x16.png": _SWAGGER_UI / "favicon-16x16.png",
}
_MEDIA_TYPES = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}

_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>linkpulse API</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
<link rel="stylesheet" href="{asset_path("docs.css")}">
<link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="{ASSETS}/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js" charset="utf-8"></script>
<script src="{asset_path("docs.js")}" charset="utf-8"></script>
</body>
</html>
"""

# Swagger UI draws its icons from data: URIs in its stylesheet and sets element styles from
# script (CSSOM, which style-src does not govern); it needs nothing inline.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    "script-src 'self'; "
    "style-src 'self'; "
    "img-src 'self' data:; "
    "font-src 'self'; "
    "connect-src 'self'; "
    "base-uri 'none'; "
    "form-action 'none'; "
    "frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


async def docs_page(request: Request) -> Response:
    """The Swagger UI page."""
    return HTMLResponse(_PAGE, headers={**_HEADERS, "Cache-Control": "no-cache"})


async def docs_asset(request: Request) -> Response:
    """One of the page's files; any other name is 404."""
    name = str(request.path_params["name"])
    path = _FILES.get(name)
    if path is None:
        return error_response(GatewayError(404, "not_found", f"no docs asset {name!r}"))
    return FileResponse(
        path,
        media_type=_MEDIA_TYPES[path.suffix],
        headers={**_HEADERS, "Cache-Control": "public, max-age=3600"},
    )


def routes() -> list[BaseRoute]:
    """The routes of the page and its assets."""
    return [
        Route(PATH, docs_page, methods=["GET"], name="docs"),
        Route(f"{ASSETS}/{{name}}", docs_asset, methods=["GET"], name="docs_asset"),
    ]
