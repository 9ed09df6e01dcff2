// Draws the charts of a trafficgen HTML report from the JSON in #chart-data (computed by
// src/report/html/charts.rs): one uPlot per chart, cursors synced, fault windows shaded and
// failing threshold windows hatched under the lines. Written for this page; no build step.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var FILL = {
    latency: "rgba(230, 97, 1, 0.16)",
    error: "rgba(215, 25, 28, 0.16)",
    threshold: "rgba(120, 0, 160, 0.10)"
  };
  var sync = uPlot.sync("trafficgen");
  var charts = {};
  window.trafficgenCharts = charts;
  window.trafficgenBands = bandsFor;

  // The bands drawn on chart `id`: every fault window, and threshold windows of its metric.
  function bandsFor(id) {
    return data.bands.filter(function (b) { return !b.chart || b.chart === id; });
  }

  // Shades each band over the plot area; called before the series are drawn. The bands are
  // looked up at every draw: the live dashboard adds them as windows open.
  function drawBands(el, id) {
    return function (u) {
      var ctx = u.ctx, bb = u.bbox, drawn = 0, bands = bandsFor(id);
      var left = bb.left, right = bb.left + bb.width;
      ctx.save();
      ctx.font = Math.round(11 * devicePixelRatio) + "px sans-serif";
      ctx.textAlign = "left";
      ctx.textBaseline = "alphabetic";
      bands.forEach(function (b) {
        var x0 = Math.max(left, u.valToPos(b.start_s, "x", true));
        var x1 = Math.min(right, u.valToPos(b.end_s, "x", true));
        if (!(x1 > x0)) { return; }
        ctx.fillStyle = FILL[b.kind] || FILL.error;
        ctx.fillRect(x0, bb.top, x1 - x0, bb.height);
        if (b.kind === "threshold") {
          ctx.save();
          ctx.beginPath();
          ctx.rect(x0, bb.top, x1 - x0, bb.height);
          ctx.clip();
          ctx.strokeStyle = "rgba(120, 0, 160, 0.45)";
          ctx.lineWidth = devicePixelRatio;
          for (var x = x0 - bb.height; x < x1; x += 10 * devicePixelRatio) {
            ctx.beginPath();
            ctx.moveTo(x, bb.top + bb.height);
            ctx.lineTo(x + bb.height, bb.top);
            ctx.stroke();
          }
          ctx.restore();
        }
        ctx.fillStyle = "#333";
        var y = bb.top + (b.kind === "threshold" ? 28 : 14) * devicePixelRatio;
        ctx.fillText(b.label, x0 + 4 * devicePixelRatio, y);
        drawn += 1;
      });
      // Threshold bounds inside the value range, dashed (red when the threshold failed).
      var lines = 0;
      (data.limits || []).filter(function (l) { return l.chart === id; }).forEach(function (l) {
        var y = u.valToPos(l.value, "y", true);
        if (!(y >= bb.top && y <= bb.top + bb.height)) { return; }
        ctx.strokeStyle = l.passed ? "rgba(26, 152, 80, 0.9)" : "rgba(215, 25, 28, 0.9)";
        ctx.lineWidth = devicePixelRatio;
        ctx.setLineDash([3 * devicePixelRatio, 3 * devicePixelRatio]);
        ctx.beginPath();
        ctx.moveTo(left, y);
        ctx.lineTo(right, y);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = ctx.strokeStyle;
        ctx.textAlign = "right";
        ctx.fillText(l.label, right - 4 * devicePixelRatio, y - 3 * devicePixelRatio);
        ctx.textAlign = "left";
        lines += 1;
      });
      // Control actions of the live dashboard: a dotted vertical line each, labelled.
      var marks = 0;
      (data.marks || []).forEach(function (m) {
        var x = u.valToPos(m.t_s, "x", true);
        if (!(x >= left && x <= right)) { return; }
        ctx.strokeStyle = "rgba(47, 111, 223, 0.8)";
        ctx.lineWidth = devicePixelRatio;
        ctx.setLineDash([2 * devicePixelRatio, 2 * devicePixelRatio]);
        ctx.beginPath();
        ctx.moveTo(x, bb.top);
        ctx.lineTo(x, bb.top + bb.height);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = "#2f6fdf";
        ctx.fillText(m.label, x + 3 * devicePixelRatio, bb.top + 42 * devicePixelRatio);
        marks += 1;
      });
      ctx.restore();
      el.dataset.bands = String(drawn);
      el.dataset.limits = String(lines);
      el.dataset.marks = String(marks);
    };
  }

  function make(c) {
    var el = document.getElementById("chart-" + c.id);
    var series = [{ label: "t (s)", value: function (u, v) { return v == null ? "–" : v + " s"; } }];
    c.series.forEach(function (s) {
      series.push({
        label: s.label,
        stroke: s.color,
        width: 1.6,
        dash: s.dash ? [6, 4] : undefined,
        spanGaps: false,
        points: { show: false },
        value: function (u, v) { return v == null ? "–" : (Math.round(v * 100) / 100) + " " + c.unit; }
      });
    });
    var columns = [data.t].concat(c.series.map(function (s) { return s.values; }));
    var opts = {
      width: Math.max(320, el.clientWidth),
      height: 240,
      cursor: { sync: { key: sync.key } },
      scales: { x: { time: false }, y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.08 : 1]; } } },
      axes: [
        { label: "seconds since the start of the load" },
        { label: c.unit, size: 64 }
      ],
      series: series,
      hooks: {
        drawAxes: [drawBands(el, c.id)],
        draw: [function () { el.dataset.drawn = "1"; }]
      }
    };
    countPoints(c);
    el.dataset.series = String(c.series.length);
    charts[c.id] = new uPlot(opts, columns, el);
  }

  // Non-null values of a chart, on its element (the browser test reads it).
  function countPoints(c) {
    var points = 0;
    c.series.forEach(function (s) {
      s.values.forEach(function (v) { if (v != null) { points += 1; } });
    });
    document.getElementById("chart-" + c.id).dataset.points = String(points);
  }

  // Live dashboard: each `point` event carries the new seconds' columns of every chart (same
  // series, by label) and the fault windows so far.
  function follow(url) {
    var source = new EventSource(url);
    source.addEventListener("point", function (ev) {
      var m = JSON.parse(ev.data);
      data.t = data.t.concat(m.t);
      data.bands = m.bands;
      m.charts.forEach(function (mc) {
        var c = data.charts.find(function (x) { return x.id === mc.id; });
        if (!c) { return; }
        c.series.forEach(function (s) {
          var ms = mc.series.find(function (x) { return x.label === s.label; });
          s.values = s.values.concat(ms ? ms.values : m.t.map(function () { return null; }));
        });
        countPoints(c);
        if (charts[c.id]) {
          charts[c.id].setData([data.t].concat(c.series.map(function (s) { return s.values; })));
        } else {
          make(c);
        }
      });
      document.body.dataset.livePoints = String(data.t.length);
      showNow();
    });
    source.addEventListener("control", function (ev) { addControlEvent(JSON.parse(ev.data), false); });
    window.trafficgenSource = source;
  }

  // The latest second's target and achieved rate, as figures beside the control form.
  function showNow() {
    var c = data.charts.find(function (x) { return x.id === "rate"; });
    var el = document.getElementById("control-now");
    if (!c || !el) { return; }
    var last = function (label) {
      var s = c.series.find(function (x) { return x.label === label; });
      var v = s && s.values.length ? s.values[s.values.length - 1] : null;
      return v == null ? null : Math.round(v * 10) / 10;
    };
    var target = last("target"), achieved = last("achieved");
    el.dataset.target = String(target);
    el.dataset.achieved = String(achieved);
    el.textContent = "last second: target " + target + "/s, achieved " + achieved + "/s";
  }

  function valuesText(v) {
    return Object.keys(v).filter(function (k) { return v[k] != null; })
      .map(function (k) { return k + "=" + v[k]; }).join(" ");
  }

  // One applied control action: a line in the list and (unless the page's data has it
  // already) a mark on every chart.
  function addControlEvent(e, marked) {
    var list = document.getElementById("control-events");
    if (list) {
      var li = document.createElement("li");
      li.textContent = e.t_s.toFixed(1) + " s · " + e.action + " " + valuesText(e.values) +
        " · by " + e.who;
      list.appendChild(li);
      document.body.dataset.controlEvents = String(list.children.length);
    }
    if (marked) { return; }
    data.marks = (data.marks || []).concat([{ t_s: e.t_s, label: e.action }]);
    Object.keys(charts).forEach(function (id) { charts[id].redraw(false, false); });
  }

  // The live dashboard's control form: each button POSTs one JSON action to the control API
  // (with the page's token as a bearer token) and shows the answer.
  function controls(cfg) {
    var status = document.getElementById("control-status");
    function post(body) {
      body.who = "dashboard";
      var headers = { "Content-Type": "application/json" };
      if (cfg.token) { headers.Authorization = "Bearer " + cfg.token; }
      return fetch(cfg.url, { method: "POST", headers: headers, body: JSON.stringify(body) })
        .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j }; }); })
        .then(function (x) {
          status.textContent = x.ok ? "applied: " + x.j.event.action + " " +
            valuesText(x.j.event.values) : "refused: " + x.j.error;
          status.dataset.state = x.ok ? "applied" : "refused";
        })
        .catch(function (e) { status.textContent = "failed: " + e; status.dataset.state = "failed"; });
    }
    document.getElementById("control-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var v = Number(document.getElementById("control-value").value);
      post(cfg.model === "open" ? { action: "rate", rate: v } : { action: "vus", vus: Math.round(v) });
    });
    document.getElementById("control-pause").addEventListener("click", function () {
      post({ action: "pause" });
    });
    document.getElementById("control-resume").addEventListener("click", function () {
      post({ action: "resume" });
    });
    document.getElementById("control-annotate").addEventListener("click", function () {
      post({ action: "annotate", text: document.getElementById("control-note").value });
    });
    (cfg.events || []).forEach(function (e) { addControlEvent(e, true); });
  }

  if (data.t.length > 0) {
    data.charts.forEach(make);
  }
  if (window.trafficgenLive) {
    document.body.dataset.livePoints = String(data.t.length);
    if (window.trafficgenControl) { controls(window.trafficgenControl); }
    showNow();
    follow(window.trafficgenLive);
  }
  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (id) {
      var el = document.getElementById("chart-" + id);
      charts[id].setSize({ width: Math.max(320, el.clientWidth), height: 240 });
    });
  });
})();
