"""GET /embed?token=…: the iframe page of an embed token, drawing its widget with inline SVG.

The page loads nothing from anywhere else: one inline script (allowed by a per-response nonce
in a strict Content-Security-Policy) fetches `/api/analytics/embed` from this gateway with the
page's own query string and draws the totals, a clicks line chart and the top countries.
"""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

PATH = "/embed"

_PAGE = """<!doctype html>
<html lang="en" data-chart="loading">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>linkpulse</title>
<style nonce="{nonce}">
  body { font: 14px/1.4 system-ui, sans-serif; margin: 12px; color: #1f2937; background: #fff; }
  .totals { display: flex; gap: 20px; margin-bottom: 8px; }
  .totals b { display: block; font-size: 20px; }
  .totals span { color: #6b7280; font-size: 12px; }
  svg { display: block; width: 100%; height: auto; }
  .countries { list-style: none; padding: 0; margin: 8px 0 0; }
  .countries li { display: flex; justify-content: space-between; border-bottom: 1px solid #eee; }
  .error { color: #b91c1c; }
</style>
</head>
<body>
<div id="totals" class="totals"></div>
<div id="chart" role="img" aria-label="clicks over time"></div>
<ul id="countries" class="countries"></ul>
<p id="status"></p>
<script nonce="{nonce}">
(function () {
  "use strict";
  var root = document.documentElement;
  var NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function text(tag, value, parent, cls) {
    var node = document.createElement(tag);
    node.textContent = value;
    if (cls) { node.className = cls; }
    parent.appendChild(node);
    return node;
  }
  function fail(message) {
    root.setAttribute("data-chart", "error");
    text("span", message, document.getElementById("status"), "error");
  }
  function drawTotals(totals) {
    var box = document.getElementById("totals");
    [["clicks", "Clicks"], ["uniqueVisitors", "Visitors"], ["leads", "Leads"],
     ["sales", "Sales"]].forEach(function (pair) {
      var cell = document.createElement("div");
      text("b", String(totals[pair[0]] || 0), cell);
      text("span", pair[1], cell);
      box.appendChild(cell);
    });
  }
  function drawChart(points) {
    var W = 600, H = 200, PAD = 24;
    var svg = el("svg", {viewBox: "0 0 " + W + " " + H, id: "clicks-chart",
                         "data-points": points.length}, document.getElementById("chart"));
    var max = 1;
    points.forEach(function (p) { max = Math.max(max, Number(p.clicks || 0)); });
    var step = points.length > 1 ? (W - 2 * PAD) / (points.length - 1) : 0;
    var coords = points.map(function (p, i) {
      var x = PAD + i * step;
      var y = H - PAD - (Number(p.clicks || 0) / max) * (H - 2 * PAD);
      return x.toFixed(1) + "," + y.toFixed(1);
    });
    el("line", {x1: PAD, y1: H - PAD, x2: W - PAD, y2: H - PAD, stroke: "#d1d5db"}, svg);
    el("polyline", {points: coords.join(" "), fill: "none", stroke: "#2563eb",
                    "stroke-width": 2}, svg);
    var label = el("text", {x: PAD, y: 14, fill: "#6b7280", "font-size": 11}, svg);
    label.textContent = "max " + max + " clicks";
    if (points.length) {
      var first = el("text", {x: PAD, y: H - 6, fill: "#6b7280", "font-size": 11}, svg);
      first.textContent = String(points[0].time).slice(0, 10);
      var last = el("text", {x: W - PAD, y: H - 6, fill: "#6b7280", "font-size": 11,
                             "text-anchor": "end"}, svg);
      last.textContent = String(points[points.length - 1].time).slice(0, 10);
    }
  }
  function drawCountries(rows) {
    var list = document.getElementById("countries");
    rows.forEach(function (row) {
      var item = document.createElement("li");
      text("span", row.label, item);
      text("span", String(row.clicks || 0), item);
      list.appendChild(item);
    });
  }
  var url = "/api/analytics/embed" + window.location.search;
  fetch(url, {credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer"})
    .then(function (response) {
      return response.json().then(function (body) { return [response.status, body]; });
    })
    .then(function (pair) {
      var body = pair[1];
      if (!body || !body.success) {
        fail((body && body.error && body.error.message) || ("HTTP " + pair[0]));
        return;
      }
      var data = body.data || {};
      drawTotals(data.totals || {});
      drawChart(data.points || []);
      drawCountries(data.countries || []);
      root.setAttribute("data-chart", "drawn");
    })
    .catch(function (err) { fail("could not load the widget: " + err); });
})();
</script>
</body>
</html>
"""


def content_security_policy(nonce: str) -> str:
    """Nothing but this page's own nonce'd script and style, and fetches to this origin."""
    return (
        "default-src 'none'; "
        f"script-src 'nonce-{nonce}'; "
        f"style-src 'nonce-{nonce}'; "
        "connect-src 'self'; "
        "img-src 'none'; "
        "base-uri 'none'; "
        "form-action 'none'; "
        "frame-ancestors *"
    )


async def embed_page(request: Request) -> Response:
    """The widget page; the token stays in the page's URL and is checked by the data route."""
    nonce = secrets.token_urlsafe(16)
    return HTMLResponse(
        _PAGE.replace("{nonce}", nonce),
        headers={
            "Content-Security-Policy": content_security_policy(nonce),
            "Cache-Control": "no-store",
            # The token is in the URL: never send it on as a Referer.
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )
