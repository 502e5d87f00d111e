/* The workspace dashboard (/dashboard#token=…): a client of the public Analytics API only.
   The dashboard token comes from the URL fragment (never sent to a server) and goes to the API
   as `Authorization: Bearer`. The view (range, zone, filters) is kept in the fragment too, so a
   reload or a bookmark shows the same page. */
(function () {
  "use strict";
  var ui = window.linkpulseUI;
  var root = document.documentElement;
  var $ = function (id) { return document.getElementById(id); };

  // Panel -> where its rows come from, and the filter a click on a row sets.
  var PANELS = {
    countries: {path: "composite", params: {dimension: "country"}, filter: "country",
                name: "Country"},
    devices: {path: "workspace/devices", params: {by: "device"}, filter: "device",
              name: "Device"},
    browsers: {path: "workspace/devices", params: {by: "browser"}, filter: "browser",
               name: "Browser"},
    referrers: {path: "composite", params: {dimension: "referrer"}, filter: "referrer",
                name: "Referrer"},
    campaigns: {path: "workspace/campaigns/ranking", params: {}, filter: "campaignId",
                name: "Campaign"},
    links: {path: "composite", params: {dimension: "link"}, filter: "linkId", name: "Link"},
    folders: {path: "workspace/top-folders", params: {}, filter: "folderId", name: "Folder"},
    tags: {path: "workspace/top-tags", params: {}, filter: "tagId", name: "Tag"}
  };
  var FILTERS = ["country", "device", "browser", "referrer", "campaignId", "linkId",
                 "folderId", "tagId"];
  var METRICS = {clicks: "Clicks", uniqueVisitors: "Visitors", leads: "Leads", sales: "Sales",
                 revenue: "Revenue"};
  var ROWS = 10;

  var state = {
    token: "", start: "", end: "", timezone: "", granularity: "", preset: "30",
    metric: "clicks", filters: {}, labels: {}, currency: "", series: null, generation: 0
  };

  // ---- the URL fragment ----------------------------------------------------------------------
  function readFragment() {
    var params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    state.token = params.get("token") || "";
    state.start = params.get("start") || "";
    state.end = params.get("end") || "";
    state.timezone = params.get("timezone") || "";
    state.granularity = params.get("granularity") || "";
    state.preset = params.get("preset") || (state.start ? "custom" : "30");
    FILTERS.forEach(function (name) {
      var value = params.get(name);
      if (value) { state.filters[name] = value; state.labels[name] = params.get(name + "Label") || value; }
    });
  }
  function writeFragment() {
    var params = new URLSearchParams();
    params.set("token", state.token);
    params.set("preset", state.preset);
    if (state.preset === "custom") { params.set("start", state.start); params.set("end", state.end); }
    params.set("timezone", state.timezone);
    if (state.granularity) { params.set("granularity", state.granularity); }
    Object.keys(state.filters).forEach(function (name) {
      params.set(name, state.filters[name]);
      params.set(name + "Label", state.labels[name]);
    });
    history.replaceState(null, "", "#" + params.toString());
  }

  // ---- dates -------------------------------------------------------------------------------
  function today(timeZone) {
    // en-CA writes dates as YYYY-MM-DD.
    return new Intl.DateTimeFormat("en-CA", {timeZone: timeZone, year: "numeric",
                                             month: "2-digit", day: "2-digit"}).format(new Date());
  }
  function addDays(day, count) {
    var d = new Date(day + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + count);
    return d.toISOString().slice(0, 10);
  }
  function daysBetween(first, last) {
    return Math.round((Date.parse(last + "T00:00:00Z") - Date.parse(first + "T00:00:00Z")) / 864e5) + 1;
  }
  function applyPreset() {
    if (state.preset === "custom") { return; }
    var days = Number(state.preset);
    state.end = today(state.timezone);
    state.start = addDays(state.end, 1 - days);
  }
  function granularity() {
    if (state.granularity) { return state.granularity; }
    var days = daysBetween(state.start, state.end);
    return days <= 2 ? "hour" : days <= 92 ? "day" : days <= 366 ? "week" : "month";
  }

  // ---- the API -----------------------------------------------------------------------------
  function ApiError(status, error) {
    this.status = status;
    this.code = (error && error.code) || "http_" + status;
    this.message = (error && error.message) || "HTTP " + status;
  }
  function api(method, path, params, retries) {
    var query = params ? "?" + new URLSearchParams(params).toString() : "";
    retries = retries === undefined ? 2 : retries;
    return fetch("/api/analytics/" + path + query, {
      method: method, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
      headers: {Authorization: "Bearer " + state.token, Accept: "application/json"}
    }).then(function (response) {
      // Over the plan's rate limit: wait as told (a few seconds at most) and ask again.
      if (response.status === 429 && retries > 0) {
        var wait = Math.min(10, Number(response.headers.get("Retry-After")) || 1);
        return new Promise(function (resolve) { setTimeout(resolve, wait * 1000); })
          .then(function () { return api(method, path, params, retries - 1); });
      }
      return response.json().catch(function () { return null; }).then(function (body) {
        if (!body || !body.success) { throw new ApiError(response.status, body && body.error); }
        return body.data;
      });
    });
  }
  function windowParams(start, end) {
    var params = {start: start || state.start, end: end || state.end, timezone: state.timezone};
    Object.keys(state.filters).forEach(function (name) { params[name] = state.filters[name]; });
    return params;
  }
  function withParams(base, extra) {
    var out = {};
    Object.keys(base).forEach(function (k) { out[k] = base[k]; });
    Object.keys(extra).forEach(function (k) { out[k] = extra[k]; });
    return out;
  }

  // ---- status ------------------------------------------------------------------------------
  function setStatus(message, kind) {
    var box = $("status");
    box.textContent = message || "";
    box.className = "status" + (kind ? " " + kind : "");
  }
  function unauthorized(err) {
    root.setAttribute("data-state", "unauthorized");
    setStatus("This dashboard link has expired or was revoked (" + err.message + ").", "error");
  }

  // ---- totals and the chart ----------------------------------------------------------------
  function formatMetric(metric, value, short) {
    if (metric === "revenue") { return ui.money(value, state.currency, short); }
    return short ? ui.compact(value) : ui.integer(value);
  }
  function drawTotals(overview) {
    var totals = overview.totals || {}, previous = overview.previous || {};
    Array.prototype.forEach.call(document.querySelectorAll(".kpi"), function (button) {
      var metric = button.getAttribute("data-metric");
      var value = Number(totals[metric] || 0), before = Number(previous[metric] || 0);
      button.setAttribute("data-value", value);
      button.setAttribute("aria-pressed", metric === state.metric ? "true" : "false");
      button.querySelector(".kpi-value").textContent = formatMetric(metric, value);
      var delta = button.querySelector(".kpi-change");
      var text = ui.change(value, before);
      delta.textContent = text ? text + " vs previous" : "";
      delta.className = "kpi-change" + (value > before ? " up" : value < before ? " down" : "");
      button.setAttribute("aria-label", METRICS[metric] + ": " + formatMetric(metric, value) +
                          (text ? ", " + text + " against the previous period" : ""));
    });
    var rates = overview.rates || {};
    $("rates").textContent = "Click → lead " + ui.percent(rates.clickToLead) +
      " · Lead → sale " + ui.percent(rates.leadToSale) +
      " · Click → sale " + ui.percent(rates.clickToSale);
  }
  function drawChart() {
    var s = state.series;
    if (!s) { return; }
    var metric = state.metric;
    var current = s.current.map(function (p) { return Number(p[metric] || 0); });
    var previous = s.current.map(function (p, i) {
      var q = s.previous[i];
      return q ? Number(q[metric] || 0) : 0;
    });
    $("chart-title").textContent = METRICS[metric] + " over time";
    ui.lineChart($("chart"), {
      id: "main-chart", title: METRICS[metric] + " over time",
      times: s.current.map(function (p) { return p.time; }),
      series: [{name: "This period", kind: "current", values: current},
               {name: "Previous period", kind: "previous", values: previous}],
      format: function (v, short) { return formatMetric(metric, v, short); },
      granularity: s.granularity, timeZone: state.timezone
    });
    $("chart").setAttribute("data-metric", metric);
  }

  // ---- breakdown panels --------------------------------------------------------------------
  function rowLabel(panel, row) {
    if (panel === "countries") { return ui.country(row.key); }
    if (panel === "referrers" && !row.key) { return "Direct / none"; }
    if (panel === "links" && row.label === String(row.key)) { return "Link " + row.key; }
    if (!row.key || row.key === "0") { return "Unknown"; }
    return row.label || String(row.key);
  }
  function drawPanel(panel, rows) {
    var spec = PANELS[panel];
    var section = $("panel-" + panel);
    var body = section.querySelector("tbody");
    var note = section.querySelector(".panel-note");
    body.textContent = "";
    note.hidden = true;
    section.setAttribute("data-rows", rows.length);
    if (!rows.length) {
      note.textContent = "No clicks in this range.";
      note.hidden = false;
    }
    rows.forEach(function (row) {
      var label = rowLabel(panel, row);
      var key = String(row.key);
      var active = state.filters[spec.filter] === key;
      var tr = ui.html("tr", {"data-key": key, "data-clicks": row.clicks || 0}, body);
      var th = ui.html("th", {scope: "row"}, tr);
      if (key && key !== "0") {
        var button = ui.html("button", {type: "button", "class": "row-filter",
                                        "aria-pressed": active ? "true" : "false",
                                        title: active ? "Remove this filter" : "Show only " + label},
                             th, label);
        button.addEventListener("click", function () {
          toggleFilter(spec.filter, key, spec.name + ": " + label);
        });
      } else {
        ui.html("span", {}, th, label);
      }
      ui.html("td", {"class": "num"}, tr, ui.integer(row.clicks));
      var share = ui.html("td", {"class": "num share"}, tr);
      ui.html("span", {}, share, ui.percent(row.share));
      var bar = ui.html("span", {"class": "bar", "aria-hidden": "true"}, share);
      bar.style.width = Math.round(100 * Math.min(1, Number(row.share || 0))) + "%";
    });
  }
  function panelFailed(panel, err) {
    var section = $("panel-" + panel);
    section.querySelector("tbody").textContent = "";
    section.setAttribute("data-rows", "0");
    var note = section.querySelector(".panel-note");
    note.textContent = err.code === "feature_not_enabled"
      ? "Not included in this workspace's plan." : "Could not load: " + err.message;
    note.hidden = false;
  }
  function drawFilters() {
    var box = $("filters");
    box.textContent = "";
    Object.keys(state.filters).forEach(function (name) {
      var chip = ui.html("button", {type: "button", "class": "chip", "data-filter": name,
                                    "aria-label": "Remove filter " + state.labels[name]},
                         box, state.labels[name] + " ✕");
      chip.addEventListener("click", function () { toggleFilter(name, state.filters[name], ""); });
    });
  }
  function toggleFilter(name, value, label) {
    if (state.filters[name] === value) {
      delete state.filters[name];
      delete state.labels[name];
    } else {
      state.filters[name] = value;
      state.labels[name] = label;
    }
    refresh();
  }

  // ---- loading everything ------------------------------------------------------------------
  function refresh(quiet) {
    var generation = ++state.generation;
    applyPreset();
    writeFragment();
    drawFilters();
    syncControls();
    root.setAttribute("data-state", "loading");
    if (!quiet) { setStatus("Loading…"); }
    var base = windowParams();
    var days = daysBetween(state.start, state.end);
    var prevEnd = addDays(state.start, -1), prevStart = addDays(prevEnd, 1 - days);
    var g = granularity();
    var current = function () { return generation === state.generation; };
    var jobs = [];
    var notices = [];
    jobs.push(api("GET", "workspace/overview", base).then(function (data) {
      if (!current()) { return; }
      state.currency = (data.meta && data.meta.currency) || state.currency;
      notices = (data.meta && data.meta.notices) || [];
      drawTotals(data);
    }));
    jobs.push(Promise.all([
      api("GET", "workspace/timeseries", withParams(base, {granularity: g})),
      api("GET", "workspace/timeseries",
          withParams(windowParams(prevStart, prevEnd), {granularity: g}))
    ]).then(function (both) {
      if (!current()) { return; }
      state.series = {current: both[0].points || [], previous: both[1].points || [],
                      granularity: (both[0].meta && both[0].meta.granularity) || g};
    }));
    Object.keys(PANELS).forEach(function (panel) {
      var spec = PANELS[panel];
      var params = withParams(withParams(base, spec.params), {limit: ROWS});
      jobs.push(api("GET", spec.path, params).then(function (data) {
        if (current()) { drawPanel(panel, data.rows || []); }
      }, function (err) {
        if (err.status === 401) { throw err; }
        if (current()) { panelFailed(panel, err); }
      }));
    });
    return Promise.all(jobs).then(function () {
      if (!current()) { return; }
      drawChart();
      // What the API adjusted (a capped range, a currency fallback) is said, not hidden.
      setStatus(notices.join(" "), notices.length ? "notice" : "");
      root.setAttribute("data-loads", String(Number(root.getAttribute("data-loads") || 0) + 1));
      root.setAttribute("data-state", "ready");
    }, function (err) {
      if (!current()) { return; }
      if (err.status === 401) { unauthorized(err); return; }
      root.setAttribute("data-state", "error");
      setStatus("Could not load the numbers: " + err.message, "error");
    });
  }

  // ---- controls ----------------------------------------------------------------------------
  function fillTimezones() {
    var select = $("timezone");
    var zones = [];
    try { zones = Intl.supportedValuesOf("timeZone"); } catch (err) { zones = []; }
    ["UTC", state.timezone].forEach(function (z) {
      if (z && zones.indexOf(z) < 0) { zones.unshift(z); }
    });
    zones.forEach(function (zone) { ui.html("option", {value: zone}, select, zone.replace(/_/g, " ")); });
  }
  function syncControls() {
    $("preset").value = state.preset;
    $("start").value = state.start;
    $("end").value = state.end;
    $("timezone").value = state.timezone;
    $("granularity").value = state.granularity;
  }
  function bindControls() {
    $("preset").addEventListener("change", function () {
      state.preset = $("preset").value;
      if (state.preset !== "custom") { refresh(); }
    });
    ["start", "end"].forEach(function (id) {
      $(id).addEventListener("change", function () { $("preset").value = "custom"; });
    });
    // A zone or an interval applies at once; dates wait for Apply.
    ["timezone", "granularity"].forEach(function (id) {
      $(id).addEventListener("change", function () {
        state.timezone = $("timezone").value;
        state.granularity = $("granularity").value;
        refresh();
      });
    });
    $("controls").addEventListener("submit", function (event) {
      event.preventDefault();
      state.preset = $("preset").value;
      state.timezone = $("timezone").value;
      state.granularity = $("granularity").value;
      if (state.preset === "custom") {
        var start = $("start").value, end = $("end").value;
        if (!start || !end || start > end) {
          setStatus("Choose a start date on or before the end date.", "error");
          return;
        }
        state.start = start; state.end = end;
      }
      refresh();
    });
    Array.prototype.forEach.call(document.querySelectorAll(".kpi"), function (button) {
      button.addEventListener("click", function () {
        state.metric = button.getAttribute("data-metric");
        Array.prototype.forEach.call(document.querySelectorAll(".kpi"), function (b) {
          b.setAttribute("aria-pressed", b === button ? "true" : "false");
        });
        drawChart();
      });
    });
    $("export-start").addEventListener("click", startExport);
  }

  // ---- live --------------------------------------------------------------------------------
  var live = {socket: null, cursor: "", backoff: 1000, count: 0};
  function setLiveCount(value) {
    live.count = value;
    $("live-count").textContent = ui.integer(value);
    $("live-count").setAttribute("data-value", value);
    $("live-count-label").textContent = ui.plural(value, "click", "clicks") +
      " in the last 30 minutes";
  }
  function loadLiveStats() {
    return api("GET", "live/stats").then(function (stats) {
      setLiveCount(Number(stats.clicksLast30m || 0));
      $("live-visitors").textContent = ui.integer(stats.activeVisitors5m) + " " +
        ui.plural(stats.activeVisitors5m, "visitor", "visitors") + " active";
      root.setAttribute("data-live-stats", "loaded");
    }, function () { /* the feed goes on; the next poll tries again */ });
  }
  function addLiveEvent(event, counted) {
    var feed = $("live-feed");
    if (feed.querySelector('li[data-event-id="' + String(event.eventId) + '"]')) { return; }
    var item = document.createElement("li");
    item.setAttribute("data-event-id", String(event.eventId));
    item.setAttribute("data-kind", event.kind || "click");
    var when = new Date(event.timestamp);
    var time = isNaN(when.getTime()) ? "" : new Intl.DateTimeFormat(ui.locale, {
      timeZone: state.timezone, hour: "2-digit", minute: "2-digit", second: "2-digit"
    }).format(when);
    ui.html("time", {datetime: event.timestamp || ""}, item, time);
    ui.html("span", {"class": "kind kind-" + (event.kind || "click")}, item, event.kind || "click");
    var what = [ui.country(event.country)];
    if (event.device) { what.push(event.device); }
    if (event.linkId) { what.push("link " + event.linkId); }
    if (event.kind === "sale" && event.amount) {
      what.push(ui.money(Number(event.amount) / 100, event.currency));
    }
    ui.html("span", {"class": "what"}, item, what.join(" · "));
    feed.insertBefore(item, feed.firstChild);
    while (feed.children.length > 20) { feed.removeChild(feed.lastChild); }
    if (counted && (event.kind || "click") === "click") { setLiveCount(live.count + 1); }
  }
  function loadRecentEvents() {
    // The latest events (newest first) until the feed brings new ones.
    return api("GET", "live", {limit: 20}).then(function (data) {
      (data.events || []).slice().reverse().forEach(function (e) { addLiveEvent(e, false); });
    }, function () { /* the feed still starts */ });
  }
  function connectLive() {
    $("live-state").textContent = "connecting…";
    api("POST", "live/token", {}).then(function (minted) {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var url = scheme + window.location.host + "/api/analytics/live/ws?token=" +
        encodeURIComponent(minted.token) + (live.cursor ? "&cursor=" + encodeURIComponent(live.cursor) : "");
      var socket = new WebSocket(url);
      live.socket = socket;
      socket.addEventListener("open", function () {
        live.backoff = 1000;
        $("live-state").textContent = "live";
        $("live-state").className = "live-state on";
        root.setAttribute("data-live", "open");
      });
      socket.addEventListener("message", function (message) {
        var frame;
        try { frame = JSON.parse(message.data); } catch (err) { return; }
        if (!frame || frame.type === "heartbeat" || frame.success === false) { return; }
        if (frame.cursor) { live.cursor = frame.cursor; }
        addLiveEvent(frame, true);
      });
      socket.addEventListener("close", function (event) {
        root.setAttribute("data-live", "closed");
        $("live-state").className = "live-state";
        if (event.code === 4401) { $("live-state").textContent = "link expired"; return; }
        $("live-state").textContent = "reconnecting…";
        setTimeout(connectLive, live.backoff);
        live.backoff = Math.min(30000, live.backoff * 2);
      });
    }, function (err) {
      if (err.status === 401) { $("live-state").textContent = "link expired"; return; }
      $("live-state").textContent = "reconnecting…";
      setTimeout(connectLive, live.backoff);
      live.backoff = Math.min(30000, live.backoff * 2);
    });
  }

  // ---- export ------------------------------------------------------------------------------
  function bytes(size) {
    var units = ["B", "kB", "MB", "GB"], i = 0;
    size = Number(size || 0);
    while (size >= 1000 && i < units.length - 1) { size /= 1000; i += 1; }
    return new Intl.NumberFormat(ui.locale, {maximumFractionDigits: i ? 1 : 0}).format(size) + " " + units[i];
  }
  function startExport() {
    var button = $("export-start"), progress = $("export-progress"), link = $("export-download");
    var status = $("export-status");
    button.disabled = true;
    link.hidden = true;
    progress.hidden = false;
    progress.value = 0;
    status.textContent = "Starting…";
    root.setAttribute("data-export", "running");
    var params = withParams(windowParams(), {dataset: "clicks", format: "csv"});
    function done(message, outcome) {
      button.disabled = false;
      status.textContent = message;
      root.setAttribute("data-export", outcome);
    }
    function poll(job) {
      progress.value = Number(job.progress || 0);
      status.textContent = job.status + " · " + ui.integer(job.rowsWritten) + " rows";
      if (job.status === "succeeded") {
        progress.value = 1;
        link.href = job.downloadUrl;
        link.hidden = false;
        link.textContent = "Download " + ui.integer(job.rowsWritten) + " clicks (" +
          bytes(job.sizeBytes) + ")";
        done("Ready.", "succeeded");
        return;
      }
      if (job.status === "failed" || job.status === "cancelled") {
        done("The export " + job.status + (job.error ? ": " + job.error : "."), "failed");
        return;
      }
      setTimeout(function () {
        api("GET", "exports/" + encodeURIComponent(job.id)).then(poll, function (err) {
          done("Could not follow the export: " + err.message, "failed");
        });
      }, 500);
    }
    api("POST", "exports", params).then(poll, function (err) {
      progress.hidden = true;
      done("Could not start the export: " + err.message, "failed");
    });
  }

  // ---- start -------------------------------------------------------------------------------
  function describeToken() {
    // The token's claims are readable (only their signature is secret): its workspace, expiry.
    try {
      var body = state.token.replace(/^lpd_/, "").split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
      var claims = JSON.parse(atob(body + "===".slice((body.length + 3) % 4)));
      $("workspace-name").textContent = "· workspace " + claims.ws;
      var until = new Date(claims.exp * 1000);
      $("workspace-name").setAttribute("title", "This link is valid until " + until.toLocaleString(ui.locale));
    } catch (err) { /* a malformed token: the API says so */ }
  }
  function start() {
    readFragment();
    // A link pasted over this one (only the fragment changes, so the page would stay): start over.
    window.addEventListener("hashchange", function () {
      var token = new URLSearchParams(window.location.hash.replace(/^#/, "")).get("token") || "";
      if (token !== state.token) { window.location.reload(); }
    });
    if (!state.token) {
      root.setAttribute("data-state", "unauthorized");
      setStatus("Open this page with a dashboard link (linkpulse dashboard link --workspace ID).", "error");
      return;
    }
    describeToken();
    bindControls();
    // The workspace's own zone when the link names none: the API answers with it.
    var zone = state.timezone
      ? Promise.resolve(state.timezone)
      : api("GET", "workspace/overview", {days: 1}).then(function (data) {
          return (data.meta && data.meta.timezone) || "UTC";
        });
    zone.then(function (timeZone) {
      state.timezone = timeZone;
      fillTimezones();
      return refresh();
    }).then(function () {
      if (root.getAttribute("data-state") === "unauthorized") { return; }
      setInterval(loadLiveStats, 30000);
      // A page kept open stays current: the numbers again every minute while it is shown.
      setInterval(function () {
        if (document.visibilityState === "visible" && root.getAttribute("data-state") === "ready") {
          refresh(true);
        }
      }, 60000);
      return Promise.all([loadLiveStats(), loadRecentEvents()]).then(connectLive);
    }, function (err) {
      if (err.status === 401) { unauthorized(err); return; }
      setStatus("Could not load the dashboard: " + err.message, "error");
    });
  }
  start();
})();
