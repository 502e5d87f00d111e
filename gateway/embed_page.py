"""GET /embed?token=…: the iframe page of an embed token, drawing its widget with inline SVG.

The page loads nothing from anywhere else: its script and styles are the gateway's own static
files (gateway/static: the shared `linkpulse-ui` module and `embed.js`), allowed by a strict
Content-Security-Policy without inline code; the script fetches `/api/analytics/embed` from this
gateway with the page's own query string and draws the totals, a clicks chart with axes and
tooltips, and the top countries.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from gateway.static_assets import asset_path

PATH = "/embed"

_PAGE = f"""<!doctype html>
<html lang="en" data-chart="loading">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="color-scheme" content="light dark">
<title>linkpulse</title>
<link rel="stylesheet" href="{asset_path("linkpulse-ui.css")}">
<link rel="stylesheet" href="{asset_path("embed.css")}">
<script src="{asset_path("linkpulse-ui.js")}" defer></script>
<script src="{asset_path("embed.js")}" defer></script>
</head>
<body>
<main class="widget">
<div id="totals" class="totals" aria-label="Totals"></div>
<section aria-labelledby="chart-title">
<h2 id="chart-title">Clicks over time</h2>
<div id="chart"></div>
</section>
<section aria-labelledby="countries-title">
<h2 id="countries-title">Top countries</h2>
<ul id="countries" class="countries"></ul>
</section>
<p id="status" role="status"></p>
</main>
</body>
</html>
"""


def content_security_policy() -> str:
    """Only this gateway's own script and style files, and fetches to this origin."""
    return (
        "default-src 'none'; "
        "script-src 'self'; "
        "style-src 'self'; "
        "connect-src 'self'; "
        "img-src 'none'; "
        "base-uri 'none'; "
        "form-action 'none'; "
        "frame-ancestors *"
    )


async def embed_page(request: Request) -> Response:
    """The widget page; the token stays in the page's URL and is checked by the data route."""
    return HTMLResponse(
        _PAGE,
        headers={
            "Content-Security-Policy": content_security_policy(),
            "Cache-Control": "no-store",
            # The token is in the URL: never send it on as a Referer.
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )
