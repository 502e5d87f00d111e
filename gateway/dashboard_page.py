"""GET /dashboard#token=…: the workspace dashboard, a client of the public Analytics API.

The page is static: its script (gateway/static/dashboard.js, with the shared `linkpulse-ui`
module) reads the dashboard token from the URL's fragment, which browsers never send to a
server, and calls `/api/analytics/…` with it as `Authorization: Bearer`. A strict
Content-Security-Policy allows nothing but this gateway's own files, fetches and WebSockets.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from gateway.static_assets import asset_path

PATH = "/dashboard"

# (id, title, what one row is)
_PANELS = (
    ("countries", "Countries", "Country"),
    ("devices", "Devices", "Device"),
    ("browsers", "Browsers", "Browser"),
    ("referrers", "Referrers", "Referrer"),
    ("campaigns", "Campaigns", "Campaign"),
    ("links", "Links", "Link"),
    ("folders", "Folders", "Folder"),
    ("tags", "Tags", "Tag"),
)
_METRICS = (
    ("clicks", "Clicks"),
    ("uniqueVisitors", "Visitors"),
    ("leads", "Leads"),
    ("sales", "Sales"),
    ("revenue", "Revenue"),
)


def _panel(key: str, title: str, row: str) -> str:
    return f"""<section class="panel" id="panel-{key}" aria-labelledby="panel-{key}-title">
<h2 id="panel-{key}-title">{title}</h2>
<table class="breakdown" data-panel="{key}"><thead><tr><th scope="col">{row}</th>
<th scope="col" class="num">Clicks</th><th scope="col" class="num">Share</th></tr></thead>
<tbody></tbody></table>
<p class="panel-note" hidden></p>
</section>"""


def _metric_button(key: str, title: str) -> str:
    pressed = "true" if key == "clicks" else "false"
    return (
        f'<button type="button" class="kpi" data-metric="{key}" aria-pressed="{pressed}">'
        f'<span class="kpi-title">{title}</span><span class="kpi-value">–</span>'
        f'<span class="kpi-change"></span></button>'
    )


_PAGE = f"""<!doctype html>
<html lang="en" data-state="loading">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="color-scheme" content="light dark">
<title>linkpulse dashboard</title>
<link rel="stylesheet" href="{asset_path("linkpulse-ui.css")}">
<link rel="stylesheet" href="{asset_path("dashboard.css")}">
<script src="{asset_path("linkpulse-ui.js")}" defer></script>
<script src="{asset_path("dashboard.js")}" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to the numbers</a>
<header class="top">
<h1>linkpulse <span id="workspace-name"></span></h1>
<form id="controls" class="controls" aria-label="Date range and time zone">
<label>Range
<select id="preset" name="preset">
<option value="1">Today</option>
<option value="7">Last 7 days</option>
<option value="30" selected>Last 30 days</option>
<option value="90">Last 90 days</option>
<option value="custom">Custom</option>
</select></label>
<label>From <input type="date" id="start" name="start" required></label>
<label>To <input type="date" id="end" name="end" required></label>
<label>Time zone <select id="timezone" name="timezone"></select></label>
<label>Interval
<select id="granularity" name="granularity">
<option value="">Auto</option><option value="hour">Hour</option><option value="day">Day</option>
<option value="week">Week</option><option value="month">Month</option>
</select></label>
<button type="submit">Apply</button>
</form>
<div id="filters" class="filters" aria-live="polite"></div>
</header>
<main id="main">
<p id="status" class="status" role="status"></p>
<section class="kpis" aria-label="Totals against the previous period">
{"".join(_metric_button(k, t) for k, t in _METRICS)}
</section>
<p id="rates" class="rates"></p>
<section class="card chart-card" aria-labelledby="chart-title">
<h2 id="chart-title">Clicks over time</h2>
<p class="legend"><span class="lp-swatch lp-current"></span>This period
<span class="lp-swatch lp-previous"></span>Previous period</p>
<div id="chart" class="chart"></div>
</section>
<section class="card live" aria-labelledby="live-title">
<h2 id="live-title">Live</h2>
<p class="live-counter"><span id="live-count" data-value="0">0</span>
<span id="live-count-label">clicks in the last 30 minutes</span></p>
<p class="live-sub"><span id="live-visitors">0 visitors active</span> ·
<span id="live-state" class="live-state">connecting…</span></p>
<ol id="live-feed" class="live-feed" aria-live="polite" aria-label="Latest events"></ol>
</section>
<section class="card export" aria-labelledby="export-title">
<h2 id="export-title">Export</h2>
<p>Every click of the range and filters above, as a gzip-compressed CSV file.</p>
<button type="button" id="export-start">Export clicks</button>
<progress id="export-progress" max="1" value="0" hidden></progress>
<span id="export-status" role="status"></span>
<a id="export-download" hidden download>Download</a>
</section>
<div class="panels">
{"".join(_panel(*panel) for panel in _PANELS)}
</div>
</main>
</body>
</html>
"""

# A Host header as browsers send it: a name or address, an optional port.
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def content_security_policy(host: str) -> str:
    """This gateway's own files, fetches and WebSockets; nothing inline, nothing elsewhere."""
    sockets = f" ws://{host} wss://{host}" if _HOST.fullmatch(host) else ""
    return (
        "default-src 'none'; "
        "script-src 'self'; "
        "style-src 'self'; "
        f"connect-src 'self'{sockets}; "
        "img-src 'none'; "
        "base-uri 'none'; "
        "form-action 'none'; "
        "frame-ancestors 'none'"
    )


async def dashboard_page(request: Request) -> Response:
    """The dashboard page; it holds no data and no token (the token is in the URL fragment)."""
    return HTMLResponse(
        _PAGE,
        headers={
            "Content-Security-Policy": content_security_policy(request.headers.get("host", "")),
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
        },
    )
