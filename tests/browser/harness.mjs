// What every browser check here shares: Debian's chromium (playwright-core, `CHROMIUM_BIN`
// to use another) in a fresh profile that is removed afterwards, the list of failed checks,
// and the exit protocol: 0 when every check holds, 1 with one `FAIL` line per failed check.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

// Runs `body({ page, check, fail, errors })` on a new page of the given viewport size; `check`
// records a failure when its condition is false, `fail` records one, `errors` collects the
// page's uncaught errors. A throw inside `body` is a failure too. Prints `ok` when all held.
export async function inChromium(viewport, body, ok) {
  const failures = [];
  const fail = (msg) => failures.push(msg);
  const check = (cond, msg) => { if (!cond) fail(msg); };
  const profile = mkdtempSync(join(tmpdir(), "trafficgen-chromium-"));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
      headless: true,
      viewport,
      args: [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
      ],
    });
    const page = context.pages()[0] || (await context.newPage());
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await body({ page, check, fail, errors });
  } catch (e) {
    fail(String((e && e.stack) || e));
  } finally {
    if (context) { await context.close(); }
    rmSync(profile, { recursive: true, force: true });
  }
  if (failures.length) {
    for (const f of failures) { console.error("FAIL " + f); }
    process.exit(1);
  }
  console.error(ok);
}
