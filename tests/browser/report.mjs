// Opens a trafficgen HTML report in Debian's chromium (playwright-core, no downloaded browser)
// and checks that every chart drew its data and shaded every fault window, by reading the
// canvas pixels, not only the page's own bookkeeping. Saves a full-page screenshot.
//
//   node tests/browser/report.mjs REPORT.html REPORT.json SCREENSHOT.png
//
// Exit 0 when every check holds; 1 with one line per failed check otherwise.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { inChromium } from "./harness.mjs";

const [htmlPath, jsonPath, shotPath] = process.argv.slice(2);
if (!htmlPath || !jsonPath || !shotPath) {
  console.error("usage: node report.mjs REPORT.html REPORT.json SCREENSHOT.png");
  process.exit(2);
}
const report = JSON.parse(readFileSync(jsonPath, "utf8"));

// The series each chart must visibly draw (their colour found on the canvas). Series that are
// flat zero in this run would be hidden under others, so only series with data are required.
const MUST_DRAW = {
  rate: [["achieved", (p) => p.requests]],
  latency: [["response p99", (p) => p.p99_ms], ["service p99", (p) => p.service_p99_ms]],
  lag: [["lag max", (p) => p.lag_max_ms]],
  errors: [["status_5xx", (p) => p.errors_by_kind[5]]],
  concurrency: [["in flight", (p) => p.in_flight]],
};
// A fault band's fill (page.js FILL) as the canvas stores it: the plot area is transparent, so
// a band pixel reads back as the fill colour with alpha 0.16 × 255 ≈ 41.
const TINT = { latency: [230, 97, 1, 41], error: [215, 25, 28, 41] };

await inChromium({ width: 1280, height: 900 }, async ({ page, check, fail, errors }) => {
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  // The file must be self-contained: any request beyond the file itself fails the test.
  const requests = [];
  page.on("request", (r) => { if (!r.url().startsWith("file:")) requests.push(r.url()); });
  await page.goto(pathToFileURL(resolve(htmlPath)).href, { waitUntil: "load" });
  await page.waitForFunction(() => document.querySelectorAll(".chart[data-drawn='1']").length === 5,
    null, { timeout: 10000 });

  const seen = await page.evaluate(({ tint }) => {
    // rgb within `tol`; alpha within `tol` of rgb[3] when given, else opaque-ish (> 128).
    const near = (px, i, rgb, tol) =>
      Math.abs(px[i] - rgb[0]) <= tol && Math.abs(px[i + 1] - rgb[1]) <= tol &&
      Math.abs(px[i + 2] - rgb[2]) <= tol &&
      (rgb.length > 3 ? Math.abs(px[i + 3] - rgb[3]) <= tol : px[i + 3] > 128);
    const hex = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
    const out = {};
    for (const [id, u] of Object.entries(window.trafficgenCharts)) {
      const el = document.getElementById("chart-" + id);
      const bb = u.bbox;
      const img = u.ctx.getImageData(bb.left, bb.top, bb.width, bb.height).data;
      const w = Math.floor(bb.width);
      const h = Math.floor(bb.height);
      // Share of a pixel column (canvas x) tinted like a fault band of `kind`.
      const tinted = (x, kind) => {
        const col = Math.round(x - bb.left);
        let n = 0;
        for (let y = 0; y < h; y++) {
          if (near(img, (y * w + col) * 4, tint[kind], 8)) { n++; }
        }
        return n / h;
      };
      const colour = {};
      // The colour each series should have, from the page's data (not from the chart object,
      // so a series drawn in the wrong colour or not at all is caught).
      const spec = JSON.parse(document.getElementById("chart-data").textContent)
        .charts.find((c) => c.id === id);
      for (const s of spec.series) {
        const rgb = hex(s.color);
        let n = 0;
        for (let i = 0; i < img.length; i += 4) { if (near(img, i, rgb, 24)) { n++; } }
        colour[s.label] = n;
      }
      // Pixels of the hatch stroke (page.js, purple 120,0,160) inside each threshold band.
      const hatch = window.trafficgenBands(id).filter((b) => b.kind === "threshold").map((b) => {
        const x0 = Math.round(u.valToPos(b.start_s, "x", true) - bb.left);
        const x1 = Math.round(u.valToPos(b.end_s, "x", true) - bb.left);
        let n = 0;
        for (let y = 0; y < h; y++) {
          for (let x = Math.max(0, x0); x < Math.min(w, x1); x++) {
            const i = (y * w + x) * 4;
            // Purple (red and blue well above green) and clearly drawn, whatever lies below.
            if (img[i] > img[i + 1] + 40 && img[i + 2] > img[i + 1] + 60 && img[i + 3] > 60) { n++; }
          }
        }
        return n;
      });
      // Threshold bounds inside the value range must have been drawn.
      const spec0 = JSON.parse(document.getElementById("chart-data").textContent);
      const inRange = (spec0.limits || []).filter((l) => l.chart === id &&
        l.value >= u.scales.y.min && l.value <= u.scales.y.max).length;
      out[id] = {
        limits: Number(el.dataset.limits), limitsInRange: inRange,
        hatch,
        drawn: el.dataset.drawn, bands: Number(el.dataset.bands),
        lengths: u.data.map((c) => c.length),
        nonNull: u.data.slice(1).map((c) => c.filter((v) => v != null).length),
        labels: u.series.slice(1).map((s) => s.label),
        colour,
        bandTint: window.trafficgenBands(id).filter((b) => b.kind !== "threshold").map((b) => {
          // Grid lines cross the band, so the best of three columns in it counts; "outside" is
          // the same measure between the first point and the first window.
          const at = (t) => u.valToPos(t, "x", true);
          const best = (a, z) => Math.max(...[0.3, 0.5, 0.7].map((f) => tinted(at(a + (z - a) * f), b.kind)));
          const first = u.data[0][0];
          const start = Math.min(...window.trafficgenBands(id).map((x) => x.start_s));
          return {
            kind: b.kind,
            inside: best(b.start_s, b.end_s),
            outside: start > first ? best(first, start) : 0,
          };
        }),
      };
    }
    return out;
  }, { tint: TINT }).catch((e) => { fail("evaluate: " + e); return {}; });

  const n = report.timeline.length;
  const faults = report.faults.length;
  check(n > 0, "the report has no timeline");
  for (const id of Object.keys(MUST_DRAW)) {
    const c = seen[id];
    if (!c) { fail(`chart ${id}: missing`); continue; }
    check(c.drawn === "1", `chart ${id}: never drew`);
    check(c.lengths.every((l) => l === n), `chart ${id}: columns ${c.lengths} != ${n} points`);
    check(c.nonNull.every((k) => k > 0), `chart ${id}: a series without points ${c.nonNull}`);
    for (const b of c.bandTint) {
      check(b.inside > 0.5, `chart ${id}: ${b.kind} band not shaded (${b.inside.toFixed(2)} of the column)`);
      check(b.outside < 0.05, `chart ${id}: ${b.kind} tint outside the window (${b.outside.toFixed(2)})`);
    }
    // Failing windowed thresholds are hatched on the chart of their metric.
    const chartOf = (src) => (/^(response|service)_time/.test(src) ? "latency"
      : /^schedule_lag/.test(src) ? "lag" : /^requests/.test(src) ? "rate" : "errors");
    const windows = report.thresholds.filter((t) => !t.passed && / in the window /.test(t.message)
      && chartOf(t.source) === id).length;
    check(c.bands === faults + windows, `chart ${id}: ${c.bands} bands, expected ${faults} faults + ${windows} threshold windows`);
    check(c.hatch.length === windows && c.hatch.every((n) => n >= 20),
      `chart ${id}: threshold hatching ${JSON.stringify(c.hatch)} for ${windows} failing windows`);
    check(c.limits === c.limitsInRange, `chart ${id}: ${c.limits} threshold lines drawn, ${c.limitsInRange} in range`);
    for (const [label, value] of MUST_DRAW[id]) {
      if (!report.timeline.some((p) => value(p) > 0)) { continue; }
      check((c.colour[label] || 0) >= 20, `chart ${id}: series "${label}" not visible (${c.colour[label] || 0} px)`);
    }
  }
  check(errors.length === 0, "page errors: " + errors.join(" | "));
  check(requests.length === 0, "requests beyond the file: " + requests.join(" "));
  await page.screenshot({ path: shotPath, fullPage: true });
  // The first screen alone, at full size: what a person sees on opening the file.
  await page.screenshot({ path: shotPath.replace(/\.png$/, "") + "-top.png" });
  console.log(JSON.stringify({ charts: seen }, null, 1));
}, "ok: 5 charts drew their data and shaded the fault windows");
