// Opens trafficgen's live dashboard during a run in Debian's chromium (playwright-core) and
// checks that it updates: the points grow event by event, the charts redraw with them, a
// fault window that opens during the run gets shaded and the failing window of a windowed
// threshold gets hatched. Saves a screenshot.
//
//   node tests/browser/dashboard.mjs URL SCREENSHOT.png
//
// Exit 0 when every check holds; 1 with one line per failed check otherwise.
import { inChromium } from "./harness.mjs";

const [url, shotPath] = process.argv.slice(2);
if (!url || !shotPath) {
  console.error("usage: node dashboard.mjs URL SCREENSHOT.png");
  process.exit(2);
}

await inChromium({ width: 1280, height: 900 }, async ({ page, check, fail, errors }) => {
  await page.goto(url, { waitUntil: "load" });
  const points = () => page.evaluate(() => Number(document.body.dataset.livePoints || -1));
  const first = await points();
  check(first >= 0, "the page is not in live mode");
  // Three more seconds of points must arrive over the event stream.
  await page.waitForFunction((n) => Number(document.body.dataset.livePoints) >= n + 3, first,
    { timeout: 15000 }).catch(() => fail(`no live updates (still ${first} points)`));
  const state = await page.evaluate(() => {
    const out = {};
    for (const [id, u] of Object.entries(window.trafficgenCharts)) {
      out[id] = {
        x: u.data[0].length,
        points: Number(document.getElementById("chart-" + id).dataset.points),
        bands: Number(document.getElementById("chart-" + id).dataset.bands || 0),
      };
    }
    return { charts: out, live: Number(document.body.dataset.livePoints) };
  });
  const ids = ["rate", "latency", "lag", "errors", "concurrency"];
  for (const id of ids) {
    const c = state.charts[id];
    if (!c) { fail(`chart ${id}: missing`); continue; }
    check(c.x === state.live, `chart ${id}: ${c.x} x values, ${state.live} points received`);
    check(c.points > 0, `chart ${id}: nothing drawn`);
  }
  // The test scenario's first fault window opens at 2 s: by now it is shaded everywhere.
  for (const id of ids) {
    const c = state.charts[id];
    check(c && c.bands >= 1, `chart ${id}: the open fault window is not shaded`);
  }
  // The windowed threshold `p(99)<100ms over 2s` fails inside the latency window (2 s to
  // 5 s), on a busy machine already in the first window: its failing window gets hatched on
  // the latency chart while the run goes on.
  const hatched = await page.waitForFunction(() => {
    const bands = window.trafficgenBands("latency").filter((b) => b.kind === "threshold");
    const el = document.getElementById("chart-latency");
    return bands.length > 0 && Number(el.dataset.bands) >= 2 &&
      { start: bands[0].start_s, end: bands[0].end_s, label: bands[0].label };
  }, null, { timeout: 15000 }).then((h) => h.jsonValue()).catch(() => null);
  check(hatched, "no failing threshold window hatched on the latency chart");
  if (hatched) {
    check(hatched.label.includes("p(99)<100ms over 2s"), `hatched band label: ${hatched.label}`);
    check(hatched.end >= 2 && hatched.start < 6, `hatched ${hatched.start}–${hatched.end} s`);
    const onRate = await page.evaluate(() =>
      window.trafficgenBands("rate").filter((b) => b.kind === "threshold").length);
    check(onRate === 0, "a latency threshold's window is hatched on the rate chart");
  }
  check(errors.length === 0, "page errors: " + errors.join(" | "));
  await page.screenshot({ path: shotPath });
  console.log(JSON.stringify({ first, ...state }));
}, "ok: the dashboard updated live");
