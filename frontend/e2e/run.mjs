// End-to-end test of the built frontend in a real browser, against real peers only:
//   Debian's chromium (driven by playwright-core) → Debian's nginx serving dist/ with the shipped
//   server block (nginx/default.conf.template) → a real todo-api process, and an OTLP/HTTP
//   receiver written here that both the browser (through nginx, same origin) and the todo-api
//   export their spans to.
// The browser creates, toggles, renames (once with an answer the API rejects) and deletes todos.
// Then: the todo-api's tp2devops_todo_operations_total equals exactly what the browser's API calls
// did; every API call carried a sampled traceparent whose trace id is in the todo-api's
// "request completed" log line for it; the browser's spans (service.name tp2devops-frontend) and
// the todo-api's spans of that trace reached the receiver. Screenshots go to
// $ARTIFACTS_DIR (default <repo>/artifacts/screenshots).
//
//   TODO_API_BIN=target/debug/todo-api node e2e/run.mjs     (frontend/test.sh sets it all up)
// Env: TODO_API_BIN (required), CHROMIUM_BIN (/usr/bin/chromium), NGINX_BIN (nginx on PATH),
// DIST_DIR (dist), ARTIFACTS_DIR. Exit 0 = every check passed; 1 = a check failed.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const SERVICE = "tp2devops-frontend";
const here = path.dirname(fileURLToPath(import.meta.url));
const frontend = path.resolve(here, "..");
const repo = path.resolve(frontend, "..");
const TODO_API_BIN = process.env.TODO_API_BIN;
const CHROMIUM_BIN = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const NGINX_BIN = process.env.NGINX_BIN || "nginx";
const DIST_DIR = path.resolve(process.env.DIST_DIR || path.join(frontend, "dist"));
const ARTIFACTS_DIR = path.resolve(
  process.env.ARTIFACTS_DIR || path.join(repo, "artifacts", "screenshots"),
);
// Every wait below is bounded; the whole test is too.
const STEP_TIMEOUT_MS = 15_000;
const TOTAL_TIMEOUT_MS = 180_000;

const cleanups = [];
const tmp = mkdtempSync(path.join(os.tmpdir(), "frontend-e2e-"));
cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
let failures = 0;

function check(ok, what, detail = "") {
  if (ok) console.log(`ok   ${what}`);
  else {
    failures += 1;
    console.log(`FAIL ${what}${detail ? `\n       ${detail}` : ""}`);
  }
  return ok;
}

function fatal(msg) {
  throw new Error(msg);
}

async function poll(what, fn, timeoutMs = STEP_TIMEOUT_MS) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) fatal(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A child process that is stopped (TERM, then KILL) at cleanup, and whose output is kept. */
function start(name, cmd, args, env = {}) {
  const child = spawn(cmd, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = { stdout: "", stderr: "", exited: null };
  child.stdout.on("data", (d) => (out.stdout += d));
  child.stderr.on("data", (d) => (out.stderr += d));
  child.on("exit", (code, signal) => (out.exited = { code, signal }));
  child.on("error", (e) => (out.exited = { error: e.message }));
  cleanups.push(async () => {
    if (out.exited) return;
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), 5000);
    await once(child, "exit").catch(() => {});
    clearTimeout(t);
  });
  return { name, child, out };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function httpOk(url) {
  try {
    return (await fetch(url)).ok;
  } catch {
    return false;
  }
}

// ---- OTLP/HTTP receiver: keeps every export request (JSON from the browser, protobuf from the
// todo-api) and answers 200 with an empty ExportTraceServiceResponse.
async function startReceiver() {
  const exports = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      const type = String(req.headers["content-type"] || "");
      exports.push({ type, body: Buffer.concat(chunks) });
      if (type.includes("json")) res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
      else res.writeHead(200, { "Content-Type": "application/x-protobuf" }).end();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(() => new Promise((r) => server.close(() => r())));
  return { port: server.address().port, exports };
}

/** Spans of JSON exports: {service, name, kind, traceId, spanId, parentSpanId}. */
function jsonSpans(exports) {
  const spans = [];
  for (const e of exports.filter((x) => x.type.includes("json"))) {
    const doc = JSON.parse(e.body.toString("utf8"));
    for (const rs of doc.resourceSpans ?? []) {
      const attrs = rs.resource?.attributes ?? [];
      const service = attrs.find((a) => a.key === "service.name")?.value?.stringValue;
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) spans.push({ service, ...s });
      }
    }
  }
  return spans;
}

/** Whether a protobuf export holds this trace id (16 raw bytes) and this service name. */
function protobufHas(exports, traceIdHex, service) {
  const id = Buffer.from(traceIdHex, "hex");
  return exports.some(
    (e) => !e.type.includes("json") && e.body.includes(id) && e.body.includes(Buffer.from(service)),
  );
}

function operationCounts(metricsText) {
  const counts = {};
  for (const m of metricsText.matchAll(
    /^tp2devops_todo_operations_total\{operation="(\w+)"\}\s+([0-9.e+]+)/gm,
  )) {
    counts[m[1]] = Number(m[2]);
  }
  return counts;
}

/** What one successful API call counts, per target-app/src/routes/todos.rs. */
function operationOf(method, url) {
  const p = new URL(url).pathname;
  if (p === "/api/todos") return method === "GET" ? "list" : method === "POST" ? "create" : null;
  if (/^\/api\/todos\/\d+$/.test(p)) {
    return { GET: "read", PATCH: "update", PUT: "update", DELETE: "delete" }[method] ?? null;
  }
  return null;
}

async function main() {
  if (!TODO_API_BIN || !existsSync(TODO_API_BIN)) fatal(`TODO_API_BIN not set or missing: ${TODO_API_BIN}`);
  if (!existsSync(CHROMIUM_BIN)) fatal(`chromium not found at ${CHROMIUM_BIN} (apt-get install chromium)`);
  if (!existsSync(path.join(DIST_DIR, "index.html"))) fatal(`no build in ${DIST_DIR} (npm run build)`);
  mkdirSync(ARTIFACTS_DIR, { recursive: true });

  const receiver = await startReceiver();
  const otlpTraces = `http://127.0.0.1:${receiver.port}/v1/traces`;

  // ---- todo-api on an ephemeral port (it prints the address), logs on, spans exported: the
  // trace id is logged only for spans that are exported (the sampling contract in docs/architecture.md).
  const api = start("todo-api", TODO_API_BIN, [], {
    HOST: "127.0.0.1",
    PORT: "0",
    LOG: "stdout",
    OTEL_SERVICE_NAME: "tp2devops-backend",
    OTEL_EXPORTER_OTLP_ENDPOINT: "",
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlpTraces,
    OTEL_BSP_SCHEDULE_DELAY: "200",
  });
  const apiUrl = await poll("todo-api to print its address", () => {
    if (api.out.exited) fatal(`todo-api exited: ${JSON.stringify(api.out.exited)}\n${api.out.stderr}`);
    return api.out.stderr.match(/listening on (http:\/\/[0-9.:]+)\r?\n/)?.[1];
  });
  await poll("todo-api /ready", () => httpOk(`${apiUrl}/ready`));

  // ---- nginx: the shipped server block, variables substituted as the image's envsubst does.
  const template = readFileSync(path.join(frontend, "nginx", "default.conf.template"), "utf8");
  let nginxUrl;
  for (let attempt = 1; !nginxUrl; attempt++) {
    const port = await freePort();
    const vars = {
      NGINX_PORT: `127.0.0.1:${port}`,
      TODO_API_URL: apiUrl,
      OTEL_COLLECTOR_URL: `http://127.0.0.1:${receiver.port}`,
    };
    let server = template.replace(/\$\{(NGINX_PORT|TODO_API_URL|OTEL_COLLECTOR_URL)\}/g, (_, k) => vars[k]);
    if (!server.includes("root /usr/share/nginx/html;")) fatal("template lost its root line");
    server = server.replace("root /usr/share/nginx/html;", `root ${DIST_DIR};`);
    const dir = path.join(tmp, `nginx-${attempt}`);
    mkdirSync(path.join(dir, "logs"), { recursive: true });
    writeFileSync(path.join(dir, "server.conf"), server);
    writeFileSync(
      path.join(dir, "nginx.conf"),
      [
        // As root, workers would otherwise run as nobody, who cannot read a private temp dir.
        process.getuid?.() === 0 ? "user root;" : "",
        "worker_processes 1;",
        `error_log ${dir}/logs/error.log info;`,
        `pid ${dir}/nginx.pid;`,
        "events { worker_connections 256; }",
        "http {",
        "  include /etc/nginx/mime.types;",
        "  default_type application/octet-stream;",
        `  access_log ${dir}/logs/access.log;`,
        ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map(
          (t) => `  ${t}_temp_path ${dir}/${t}_temp;`,
        ),
        `  include ${dir}/server.conf;`,
        "}",
      ].join("\n"),
    );
    const nginx = start("nginx", NGINX_BIN, ["-p", dir, "-e", `${dir}/logs/error.log`, "-c", `${dir}/nginx.conf`, "-g", "daemon off;"]);
    const up = await poll("nginx to start", async () => {
      if (nginx.out.exited) return "exited";
      return (await httpOk(`http://127.0.0.1:${port}/healthz`)) ? "up" : null;
    });
    if (up === "up") nginxUrl = `http://127.0.0.1:${port}`;
    else {
      const log = readFileSync(path.join(dir, "logs", "error.log"), "utf8");
      if (attempt >= 3 || !log.includes("Address already in use")) fatal(`nginx did not start:\n${nginx.out.stderr}\n${log}`);
    }
  }
  console.log(`todo-api ${apiUrl}, nginx ${nginxUrl}, OTLP receiver ${otlpTraces}`);

  // ---- the browser
  const profile = mkdtempSync(path.join(tmp, "chromium-profile-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_BIN,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
    viewport: { width: 900, height: 640 },
  });
  cleanups.push(() => context.close().catch(() => {}));
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const consoleErrors = [];
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  // Every API call the page makes, with the headers it really sent.
  const calls = [];
  let inFlight = 0;
  page.on("request", (req) => {
    if (!new URL(req.url()).pathname.startsWith("/api/")) return;
    inFlight += 1;
    const call = { method: req.method(), url: req.url(), status: null, traceparent: null };
    calls.push(call);
    const headers = req
      .allHeaders()
      .then((h) => (call.traceparent = h.traceparent ?? null))
      .catch(() => {});
    const done = async (status) => {
      await headers;
      call.status = status;
      inFlight -= 1;
    };
    req.response().then((res) => done(res ? res.status() : 0), () => done(0));
  });
  /** Runs a UI action and waits until the page has made `n` more API calls, all answered. */
  async function act(what, n, fn) {
    const before = calls.length;
    await fn();
    await poll(`${what}: ${n} API call(s) answered`, () => calls.length >= before + n && inFlight === 0);
    if (calls.length !== before + n) fatal(`${what}: expected ${n} API calls, saw ${calls.length - before}`);
  }
  const item = (text) => page.locator("li.todo", { has: page.getByText(text, { exact: true }) });
  const countIs = (text) => page.locator(".count", { hasText: text }).waitFor();

  await act("page load", 1, async () => {
    await page.goto(nginxUrl);
    await page.getByText("Nothing here.").waitFor();
  });
  await countIs("0 shown of 0 todos");

  const names = ["Buy milk", "Write report", "Call the plumber"];
  for (const name of names) {
    await act(`create ${name}`, 2, async () => {
      await page.getByLabel("New todo").fill(name);
      await page.getByRole("button", { name: "Add", exact: true }).click();
      await item(name).waitFor();
    });
  }
  await countIs("3 shown of 3 todos");

  await act("toggle Buy milk", 2, async () => {
    await item("Buy milk").getByRole("checkbox").click();
    await page.locator("li.todo.done", { hasText: "Buy milk" }).waitFor();
  });

  await act("rename Write report", 2, async () => {
    await item("Write report").getByRole("button", { name: /^Rename/ }).click();
    await page.getByLabel('New text for "Write report"').fill("Write the report");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await item("Write the report").waitFor();
  });

  // A rename the API refuses (over 500 characters): the page shows the API's error shape.
  await act("rejected rename", 1, async () => {
    await item("Call the plumber").getByRole("button", { name: /^Rename/ }).click();
    await page.getByLabel('New text for "Call the plumber"').fill("x".repeat(501));
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await page.getByRole("alert").waitFor();
  });
  const alert = await page.getByRole("alert").innerText();
  check(
    alert.includes("validation_error") && alert.includes("HTTP 400") && /500/.test(alert),
    "the rejected rename shows the API's error code, message and status",
    alert,
  );
  await page.screenshot({ path: path.join(ARTIFACTS_DIR, "frontend-e2e-error.png") });
  await page.getByRole("button", { name: "Cancel", exact: true }).click();
  await page.getByRole("button", { name: "Dismiss error", exact: true }).click();

  await act("filter completed", 1, async () => {
    await page.getByRole("button", { name: "Completed", exact: true }).click();
    await countIs("1 shown of 1 completed todos");
  });
  const completedShown = await page.locator("li.todo .text").allInnerTexts();
  check(
    JSON.stringify(completedShown) === JSON.stringify(["Buy milk"]),
    "the completed filter shows only the toggled todo",
    JSON.stringify(completedShown),
  );
  await act("filter active", 1, async () => {
    await page.getByRole("button", { name: "Active", exact: true }).click();
    await countIs("2 shown of 2 active todos");
  });
  await act("filter all", 1, async () => {
    await page.getByRole("button", { name: "All", exact: true }).click();
    await countIs("3 shown of 3 todos");
  });

  await act("delete Call the plumber", 2, async () => {
    await item("Call the plumber").getByRole("button", { name: /^Delete/ }).click();
    await countIs("2 shown of 2 todos");
  });
  const finalShown = await page.locator("li.todo .text").allInnerTexts();
  check(
    JSON.stringify(finalShown) === JSON.stringify(["Buy milk", "Write the report"]),
    "the list ends with the two remaining todos, renamed text included",
    JSON.stringify(finalShown),
  );
  const shot = path.join(ARTIFACTS_DIR, "frontend-e2e.png");
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot: ${path.relative(repo, shot)}`);

  // ---- the todo-api counted exactly what the browser did
  const expected = { create: 0, list: 0, read: 0, update: 0, delete: 0 };
  for (const c of calls) {
    const op = operationOf(c.method, c.url);
    if (op && c.status >= 200 && c.status < 300) expected[op] += 1;
  }
  const scripted = { create: 3, update: 2, delete: 1, read: 0 };
  check(
    Object.entries(scripted).every(([k, v]) => expected[k] === v),
    "the browser's successful calls are the scripted ones (3 create, 2 update, 1 delete)",
    JSON.stringify(expected),
  );
  const metrics = await (await fetch(`${apiUrl}/metrics`)).text();
  const counted = operationCounts(metrics);
  const actual = Object.fromEntries(Object.keys(expected).map((k) => [k, counted[k] ?? 0]));
  check(
    JSON.stringify(actual) === JSON.stringify(expected),
    `tp2devops_todo_operations_total equals the browser's calls ${JSON.stringify(expected)}`,
    `todo-api counted ${JSON.stringify(actual)}`,
  );
  const rejected = calls.filter((c) => c.status === 400);
  check(rejected.length === 1 && rejected[0].method === "PATCH", "exactly one call was refused (the 400 rename)");

  // ---- trace context: the browser's traceparent is the todo-api's trace
  const logs = api.out.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
  const access = logs.filter((l) => l.msg === "request completed" && String(l.route).startsWith("/api/"));
  check(
    access.length === calls.length,
    `the todo-api logged one request line per browser API call (${calls.length})`,
    `${access.length} lines`,
  );
  const tpRe = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;
  const badTp = calls.filter((c) => !tpRe.test(c.traceparent ?? ""));
  check(badTp.length === 0, "every API call carried a sampled W3C traceparent", JSON.stringify(badTp[0]));
  const unmatched = calls.filter((c) => {
    const id = tpRe.exec(c.traceparent ?? "")?.[1];
    const lines = access.filter((l) => l.traceId === id);
    return !(lines.length === 1 && lines[0].method === c.method && lines[0].status === c.status);
  });
  check(
    unmatched.length === 0,
    "each call's trace id is in exactly one todo-api request log line, same method and status",
    JSON.stringify(unmatched[0]),
  );
  const firstCreate = calls.find((c) => c.method === "POST");
  const [, traceId, parentSpanId] = tpRe.exec(firstCreate.traceparent ?? "") ?? [];
  const created = logs.find((l) => l.msg === "Todo created" && l.text === "Buy milk");
  check(
    created?.traceId === traceId,
    `the "Todo created" log line of Buy milk has the browser's trace id ${traceId}`,
    JSON.stringify(created),
  );

  // ---- spans: the browser's (via nginx) and the todo-api's side of the same trace
  const spans = await poll(
    "browser and todo-api spans of the first create",
    () => {
      const s = jsonSpans(receiver.exports);
      const fetchSpan = s.find((x) => x.traceId === traceId && x.spanId === parentSpanId);
      return fetchSpan && protobufHas(receiver.exports, traceId, "tp2devops-backend") ? s : null;
    },
    20_000,
  ).catch((e) => {
    check(false, "spans arrived", e.message);
    return jsonSpans(receiver.exports);
  });
  const fetchSpan = spans.find((x) => x.traceId === traceId && x.spanId === parentSpanId);
  check(
    fetchSpan?.service === "tp2devops-frontend" && fetchSpan?.name === "POST /api/todos" && fetchSpan?.kind === 3,
    "the browser exported the CLIENT span whose id the traceparent carried (service.name tp2devops-frontend, POST /api/todos)",
    JSON.stringify(fetchSpan && { service: fetchSpan.service, name: fetchSpan.name, kind: fetchSpan.kind }),
  );
  check(
    protobufHas(receiver.exports, traceId, "tp2devops-backend"),
    "the todo-api exported spans of the same trace id (one trace: browser → todo-api)",
  );
  check(
    spans.some((x) => x.service === "tp2devops-frontend" && x.name === "documentLoad"),
    "the page load was exported as a documentLoad span",
    [...new Set(spans.map((x) => x.name))].join(", "),
  );
  check(
    spans.every((x) => !String(x.attributes?.find?.((a) => a.key === "url.full")?.value?.stringValue).includes("/otlp/")),
    "the exporter's own POSTs are not traced",
  );
  // The dashboard's frontend panels select Tempo span-metrics series by the spans' service, name
  // and kind; those values must be ones this browser really exports (Tempo cannot run here).
  const dashboard = JSON.parse(readFileSync(path.join(repo, "dashboards", "todo-api.json"), "utf8"));
  const exprs = dashboard.panels
    .flatMap((p) => p.targets ?? [])
    .map((t) => t.expr ?? "")
    .filter((e) => e.includes("traces_spanmetrics_") && e.includes(`service="${SERVICE}"`));
  const kinds = { SPAN_KIND_INTERNAL: 1, SPAN_KIND_SERVER: 2, SPAN_KIND_CLIENT: 3 };
  const mine = spans.filter((x) => x.service === SERVICE);
  const unmet = exprs.filter((e) => {
    const name = /span_name="([^"]+)"/.exec(e)?.[1];
    const kind = /span_kind="([^"]+)"/.exec(e)?.[1];
    return !mine.some((x) => (!name || x.name === name) && (!kind || x.kind === kinds[kind]));
  });
  check(
    exprs.length > 0 && unmet.length === 0,
    `the dashboard's ${exprs.length} frontend span-metrics queries select spans the browser exported`,
    unmet.join("\n       "),
  );
  // Chromium logs every non-2xx answer; the refused rename is the one expected there.
  const unexpected = consoleErrors.filter((m) => !/status of 400 \(Bad Request\)/.test(m));
  check(
    unexpected.length === 0 && consoleErrors.length === 1,
    "the browser console shows only the refused rename's 400",
    consoleErrors.join("\n"),
  );

  // Last: the todo-api goes away, nginx answers 502 with its own HTML page, and the page still
  // says what happened (a stand-in code, nginx's text) instead of breaking.
  api.child.kill("SIGTERM");
  await poll("todo-api to exit", () => api.out.exited);
  await act("filter with the todo-api down", 1, async () => {
    await page.getByRole("button", { name: "Completed", exact: true }).click();
    await page.getByRole("alert").waitFor();
  });
  const down = await page.getByRole("alert").innerText();
  check(
    down.includes("http_502") && down.includes("502 Bad Gateway") && calls.at(-1).status === 502,
    "with the todo-api down, nginx's 502 page is shown as http_502 with its text",
    down,
  );
}

let timer;
async function cleanup() {
  clearTimeout(timer);
  for (const fn of cleanups.reverse()) {
    try {
      await fn();
    } catch (e) {
      console.error(`cleanup: ${e}`);
    }
  }
  cleanups.length = 0;
}
// A stray rejection (a browser event after close, say) must not leave servers running.
for (const ev of ["uncaughtException", "unhandledRejection"]) {
  process.on(ev, async (e) => {
    console.log(`FAIL ${ev}: ${e?.stack || e}`);
    await cleanup();
    process.exit(1);
  });
}
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, async () => {
    console.error(`frontend e2e: ${sig}, stopping`);
    await cleanup();
    process.exit(1);
  });
}

timer = setTimeout(async () => {
  console.error(`frontend e2e: over ${TOTAL_TIMEOUT_MS} ms, stopping`);
  await cleanup();
  process.exit(1);
}, TOTAL_TIMEOUT_MS);

try {
  await main();
} catch (e) {
  failures += 1;
  console.log(`FAIL ${e.stack || e}`);
}
await cleanup();
console.log(`frontend e2e: ${failures === 0 ? "passed" : `${failures} check(s) failed`}`);
process.exitCode = failures === 0 ? 0 : 1;
