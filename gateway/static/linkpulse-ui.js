/* linkpulse UI helpers shared by /dashboard and /embed: numbers and names formatted for people
   (Intl), and a small inline-SVG line chart with axes, a previous-period series and tooltips.
   No dependencies; exposes window.linkpulseUI. */
(function () {
  "use strict";
  var SVG_NS = "http://www.w3.org/2000/svg";
  var locale = navigator.language || "en-US";

  function numberFormat(options) {
    try { return new Intl.NumberFormat(locale, options); }
    catch (err) { return new Intl.NumberFormat("en-US", options); }
  }
  var integerFormat = numberFormat({maximumFractionDigits: 0});
  var compactFormat = numberFormat({notation: "compact", maximumFractionDigits: 1});
  var percentFormat = numberFormat({style: "percent", maximumFractionDigits: 1});
  var changeFormat = numberFormat({style: "percent", maximumFractionDigits: 1,
                                   signDisplay: "exceptZero"});
  var currencyFormats = {};
  var regionNames = null;
  try { regionNames = new Intl.DisplayNames([locale, "en"], {type: "region"}); }
  catch (err) { regionNames = null; }

  /** 1234 -> "1,234" (the reader's locale). */
  function integer(value) { return integerFormat.format(Number(value || 0)); }
  /** 12345 -> "12K": for axis ticks. */
  function compact(value) { return compactFormat.format(Number(value || 0)); }
  /** 0.125 -> "12.5%". */
  function percent(value) { return percentFormat.format(Number(value || 0)); }
  /** The change from previous to current as "+12.5%", or "" when there was nothing before. */
  function change(current, previous) {
    current = Number(current || 0); previous = Number(previous || 0);
    if (!previous) { return current ? "new" : ""; }
    return changeFormat.format((current - previous) / previous);
  }
  /** 1234.5, "EUR" -> "€1,234.50" (short: "€1.2K", for axis ticks). */
  function money(value, currency, short) {
    var key = (currency || "USD") + (short ? ":short" : "");
    if (!currencyFormats[key]) {
      var options = {style: "currency", currency: currency || "USD"};
      if (short) { options.notation = "compact"; options.maximumFractionDigits = 1; }
      try { currencyFormats[key] = numberFormat(options); }
      catch (err) { currencyFormats[key] = numberFormat({maximumFractionDigits: 2}); }
    }
    return currencyFormats[key].format(Number(value || 0));
  }
  var pluralRules = null;
  try { pluralRules = new Intl.PluralRules(locale); } catch (err) { pluralRules = null; }
  /** count, "visitor", "visitors" -> the form the count takes ("1 visitor", "2 visitors"). */
  function plural(count, one, other) {
    return pluralRules && pluralRules.select(Number(count || 0)) === "one" ? one : other;
  }
  /** "DE" -> "Germany"; "" -> "Unknown". */
  function country(code) {
    if (!code) { return "Unknown"; }
    if (regionNames) {
      try { return regionNames.of(String(code).toUpperCase()) || code; }
      catch (err) { return code; }
    }
    return code;
  }
  /** A bucket's start ("2026-03-24T00:00:00+01:00") as the reader reads it, per granularity. */
  function bucketLabel(iso, granularity, timeZone, long) {
    var when = new Date(iso);
    if (isNaN(when.getTime())) { return String(iso); }
    var options = {timeZone: timeZone || "UTC"};
    if (granularity === "hour") {
      options.hour = "2-digit"; options.minute = "2-digit";
      if (long) { options.month = "short"; options.day = "numeric"; }
    } else if (granularity === "month") {
      options.month = "short"; options.year = "numeric";
    } else {
      options.month = "short"; options.day = "numeric";
      if (long) { options.year = "numeric"; options.weekday = "short"; }
    }
    try { return new Intl.DateTimeFormat(locale, options).format(when); }
    catch (err) { return String(iso).slice(0, 16); }
  }

  function svg(name, attrs, parent) {
    var node = document.createElementNS(SVG_NS, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function html(tag, attrs, parent, textValue) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (textValue !== undefined) { node.textContent = textValue; }
    if (parent) { parent.appendChild(node); }
    return node;
  }
  /** Round axis ticks from 0 to at least max: [0, step, 2*step, ...]. */
  function niceTicks(max, count) {
    if (!(max > 0)) { return [0, 1]; }
    var raw = max / Math.max(1, count);
    var magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = magnitude;
    [1, 2, 2.5, 5, 10].some(function (m) { step = m * magnitude; return step >= raw; });
    var ticks = [];
    for (var v = 0; v < max + step * 0.999; v += step) { ticks.push(Number(v.toPrecision(12))); }
    if (ticks.length < 2) { ticks.push(step); }
    return ticks;
  }

  /**
   * Draw a line chart into container (replacing what it held) and keep it sized to it.
   * spec: {id, title, times: [iso], series: [{name, values: [number], kind: "current"|"previous"}],
   *        format(value) -> text, granularity, timeZone}
   * Hovering, touching or focusing the chart (arrow keys move) shows a tooltip with every
   * series' value of the bucket; a visually hidden table holds the same numbers for screen
   * readers.
   */
  function lineChart(container, spec) {
    if (container._chartObserver) { container._chartObserver.disconnect(); }
    var state = {index: -1};
    function draw() {
      var width = Math.max(260, Math.floor(container.clientWidth || 600));
      var height = width < 480 ? 200 : 260;
      var left = 52, right = 12, top = 12, bottom = 30;
      container.textContent = "";
      var n = spec.times.length;
      var max = 0;
      spec.series.forEach(function (s) {
        s.values.forEach(function (v) { max = Math.max(max, Number(v || 0)); });
      });
      var ticks = niceTicks(max, height < 220 ? 3 : 4);
      var top_value = ticks[ticks.length - 1];
      var plotW = width - left - right, plotH = height - top - bottom;
      function x(i) { return left + (n > 1 ? (i * plotW) / (n - 1) : plotW / 2); }
      function y(v) { return top + plotH - (Number(v || 0) / top_value) * plotH; }
      var root = svg("svg", {
        viewBox: "0 0 " + width + " " + height, width: width, height: height,
        id: spec.id || "", "class": "lp-chart", role: "img", tabindex: 0,
        "aria-label": spec.title + ": use the arrow keys to read each value",
        "data-points": n, "data-max": max
      }, container);
      var grid = svg("g", {"class": "lp-grid"}, root);
      ticks.forEach(function (t) {
        svg("line", {x1: left, x2: width - right, y1: y(t), y2: y(t)}, grid);
        var label = svg("text", {x: left - 6, y: y(t) + 4, "text-anchor": "end",
                                 "class": "lp-axis-label"}, grid);
        label.textContent = spec.format(t, true);
      });
      var axis = svg("g", {"class": "lp-axis"}, root);
      svg("line", {x1: left, x2: width - right, y1: top + plotH, y2: top + plotH}, axis);
      var every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(plotW / 84))));
      for (var i = 0; i < n; i += every) {
        // The first and last labels stay inside the chart.
        var anchor = i === 0 && n > 1 ? "start" : x(i) > width - right - 36 ? "end" : "middle";
        var tick = svg("text", {x: x(i), y: height - 8, "text-anchor": anchor,
                                "class": "lp-axis-label"}, axis);
        tick.textContent = bucketLabel(spec.times[i], spec.granularity, spec.timeZone, false);
      }
      // The previous period first, so the current one is drawn over it.
      spec.series.slice().reverse().forEach(function (s) {
        var coords = s.values.map(function (v, j) { return x(j).toFixed(1) + "," + y(v).toFixed(1); });
        svg("polyline", {points: coords.join(" "), "class": "lp-line lp-" + s.kind,
                         "data-series": s.kind}, root);
      });
      var current = spec.series[0];
      if (n <= 62) {
        var dots = svg("g", {"class": "lp-dots"}, root);
        current.values.forEach(function (v, j) {
          svg("circle", {cx: x(j), cy: y(v), r: 2.5, "data-time": spec.times[j],
                         "data-value": Number(v || 0)}, dots);
        });
      }
      var guide = svg("line", {"class": "lp-guide", x1: 0, x2: 0, y1: top, y2: top + plotH,
                               visibility: "hidden"}, root);
      var marks = spec.series.map(function (s) {
        return svg("circle", {r: 4, "class": "lp-mark lp-" + s.kind, visibility: "hidden"}, root);
      });
      var tip = html("div", {"class": "lp-tooltip", role: "status", "aria-live": "polite",
                             hidden: "hidden"}, container);
      function show(index) {
        if (!n) { return; }
        index = Math.max(0, Math.min(n - 1, index));
        state.index = index;
        var px = x(index);
        guide.setAttribute("x1", px); guide.setAttribute("x2", px);
        guide.setAttribute("visibility", "visible");
        spec.series.forEach(function (s, k) {
          marks[k].setAttribute("cx", px); marks[k].setAttribute("cy", y(s.values[index]));
          marks[k].setAttribute("visibility", "visible");
        });
        tip.textContent = "";
        html("strong", {}, tip, bucketLabel(spec.times[index], spec.granularity, spec.timeZone, true));
        spec.series.forEach(function (s) {
          var line = html("span", {"class": "lp-tip-" + s.kind}, tip);
          html("span", {"class": "lp-swatch lp-" + s.kind}, line);
          line.appendChild(document.createTextNode(s.name + ": " + spec.format(s.values[index])));
        });
        tip.removeAttribute("hidden");
        var tipWidth = tip.offsetWidth || 160;
        var leftPx = Math.min(Math.max(0, px - tipWidth / 2), width - tipWidth);
        tip.style.left = leftPx + "px";
        tip.style.top = "0px";
      }
      function hide() {
        state.index = -1;
        guide.setAttribute("visibility", "hidden");
        marks.forEach(function (m) { m.setAttribute("visibility", "hidden"); });
        tip.setAttribute("hidden", "hidden");
      }
      function nearest(event) {
        var box = root.getBoundingClientRect();
        var point = event.touches ? event.touches[0] : event;
        var px = ((point.clientX - box.left) / box.width) * width;
        return n > 1 ? Math.round(((px - left) / plotW) * (n - 1)) : 0;
      }
      root.addEventListener("mousemove", function (e) { show(nearest(e)); });
      root.addEventListener("touchstart", function (e) { show(nearest(e)); }, {passive: true});
      root.addEventListener("mouseleave", hide);
      root.addEventListener("blur", hide);
      root.addEventListener("focus", function () { show(state.index < 0 ? n - 1 : state.index); });
      root.addEventListener("keydown", function (e) {
        var step = {ArrowLeft: -1, ArrowRight: 1, Home: -n, End: n}[e.key];
        if (step === undefined) { if (e.key === "Escape") { hide(); } return; }
        e.preventDefault();
        show((state.index < 0 ? n - 1 : state.index) + step);
      });
      // The numbers as a table, for screen readers (and anyone copying them).
      var hidden = html("div", {"class": "lp-sr-only"}, container);
      var table = html("table", {"data-chart-table": spec.id || ""}, hidden);
      html("caption", {}, table, spec.title);
      var head = html("tr", {}, html("thead", {}, table));
      html("th", {scope: "col"}, head, "Time");
      spec.series.forEach(function (s) { html("th", {scope: "col"}, head, s.name); });
      var body = html("tbody", {}, table);
      spec.times.forEach(function (t, j) {
        var row = html("tr", {"data-time": t}, body);
        html("th", {scope: "row"}, row, bucketLabel(t, spec.granularity, spec.timeZone, true));
        spec.series.forEach(function (s) {
          html("td", {"data-series": s.kind, "data-value": Number(s.values[j] || 0)}, row,
               spec.format(s.values[j]));
        });
      });
    }
    draw();
    if (window.ResizeObserver) {
      var lastWidth = container.clientWidth;
      container._chartObserver = new ResizeObserver(function () {
        if (Math.abs(container.clientWidth - lastWidth) >= 8) {
          lastWidth = container.clientWidth;
          draw();
        }
      });
      container._chartObserver.observe(container);
    }
  }

  window.linkpulseUI = {
    integer: integer, compact: compact, percent: percent, change: change, money: money,
    plural: plural,
    country: country, bucketLabel: bucketLabel, lineChart: lineChart, html: html,
    locale: locale
  };
})();
