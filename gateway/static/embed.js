/* The embed widget (/embed?token=…): fetches /api/analytics/embed with the page's own query
   string and draws the totals, a clicks chart and the top countries. */
(function () {
  "use strict";
  var ui = window.linkpulseUI;
  var root = document.documentElement;

  function fail(message) {
    root.setAttribute("data-chart", "error");
    ui.html("span", {"class": "error"}, document.getElementById("status"), message);
  }
  function drawTotals(totals, currency) {
    var box = document.getElementById("totals");
    [["clicks", "Clicks"], ["uniqueVisitors", "Visitors"], ["leads", "Leads"],
     ["sales", "Sales"], ["revenue", "Revenue"]].forEach(function (pair) {
      var value = totals[pair[0]] || 0;
      var cell = ui.html("div", {"class": "total", "data-metric": pair[0], "data-value": value}, box);
      ui.html("b", {}, cell, pair[0] === "revenue" ? ui.money(value, currency) : ui.integer(value));
      ui.html("span", {}, cell, pair[1]);
    });
  }
  function drawCountries(rows) {
    var list = document.getElementById("countries");
    var total = 0;
    rows.forEach(function (row) { total += Number(row.clicks || 0); });
    rows.forEach(function (row) {
      var item = ui.html("li", {"data-key": row.key, "data-clicks": row.clicks || 0}, list);
      ui.html("span", {"class": "name"}, item, ui.country(row.key));
      ui.html("span", {"class": "value"}, item, ui.integer(row.clicks));
      var bar = ui.html("span", {"class": "bar", "aria-hidden": "true"}, item);
      bar.style.width = (total ? (100 * Number(row.clicks || 0)) / total : 0).toFixed(1) + "%";
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
      var meta = data.meta || {};
      var points = data.points || [];
      drawTotals(data.totals || {}, meta.currency);
      ui.lineChart(document.getElementById("chart"), {
        id: "clicks-chart", title: "Clicks over time",
        times: points.map(function (p) { return p.time; }),
        series: [{name: "Clicks", kind: "current",
                  values: points.map(function (p) { return Number(p.clicks || 0); })}],
        format: function (v, short) { return short ? ui.compact(v) : ui.integer(v); },
        granularity: meta.granularity, timeZone: meta.timezone
      });
      drawCountries(data.countries || []);
      root.setAttribute("data-chart", "drawn");
    })
    .catch(function (err) { fail("could not load the widget: " + err); });
})();
