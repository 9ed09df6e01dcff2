// Changes the load of a running trafficgen through its live dashboard's control form in
// Debian's chromium (playwright-core) and checks that the achieved rate follows on the page:
// the rate chart's data and the figure beside the form. Saves a screenshot.
//
//   node tests/browser/control.mjs URL NEW_RATE SCREENSHOT.png
//
// Exit 0 when every check holds; 1 with one line per failed check otherwise.
import { inChromium } from "./harness.mjs";

const [url, rateArg, shotPath] = process.argv.slice(2);
const rate = Number(rateArg);
if (!url || !(rate > 0) || !shotPath) {
  console.error("usage: node control.mjs URL NEW_RATE SCREENSHOT.png");
  process.exit(2);
}

await inChromium({ width: 1280, height: 1100 }, async ({ page, check, errors }) => {
  await page.goto(url, { waitUntil: "load" });
  // Achieved rate of the last `n` whole seconds on the rate chart (its uPlot data).
  const achieved = (n) => page.evaluate((n) => {
    const u = window.trafficgenCharts.rate;
    const i = u.series.findIndex((s) => s.label === "achieved");
    return u.data[i].slice(-n);
  }, n);
  await page.waitForFunction(() => Number(document.body.dataset.livePoints) >= 2, null,
    { timeout: 15000 });
  const before = await achieved(1);
  check(before[0] < rate * 0.7, `the rate was already ${before[0]}/s before the change`);

  await page.fill("#control-value", String(rate));
  await page.click("#control-form button[type=submit]");
  await page.waitForFunction(() => document.getElementById("control-status").dataset.state,
    null, { timeout: 15000 });
  const status = await page.textContent("#control-status");
  check(status.startsWith("applied: rate"), `the control answer: ${status}`);

  // Two whole seconds at the new rate (within 15 %), on the chart and in the figure.
  const near = (v) => Math.abs(v - rate) <= rate * 0.15;
  await page.waitForFunction(({ rate }) => {
    const u = window.trafficgenCharts.rate;
    const i = u.series.findIndex((s) => s.label === "achieved");
    const last = u.data[i].slice(-2);
    return last.length === 2 && last.every((v) => Math.abs(v - rate) <= rate * 0.15);
  }, { rate }, { timeout: 20000 }).catch(() => {});
  const after = await achieved(2);
  check(after.every(near), `the achieved rate did not follow: last seconds ${after.join(", ")}/s`);
  const figure = await page.evaluate(() => {
    const el = document.getElementById("control-now");
    return { target: Number(el.dataset.target), achieved: Number(el.dataset.achieved) };
  });
  check(figure.target === rate, `the figure's target is ${figure.target}, not ${rate}`);
  check(near(figure.achieved), `the figure's achieved rate is ${figure.achieved}`);
  const events = await page.evaluate(() => ({
    listed: document.querySelectorAll("#control-events li").length,
    marks: Number(document.getElementById("chart-rate").dataset.marks || 0),
  }));
  check(events.listed === 1, `${events.listed} control events listed, expected 1`);
  check(events.marks === 1, `${events.marks} control marks on the rate chart, expected 1`);
  check(errors.length === 0, "page errors: " + errors.join(" | "));
  await page.screenshot({ path: shotPath, fullPage: true });
  console.log(JSON.stringify({ before, after, figure, events }));
}, "ok: the achieved rate followed the change made on the page");
