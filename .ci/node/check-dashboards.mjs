// Type-checks every dashboards/*.json against Grafana's published schema types: each file is
// wrapped in a .ts module typed as ProvisionedDashboard and run through tsc (exit 1 on errors).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dir = resolve(process.argv[2] ?? join(here, "../../dashboards"));
const work = mkdtempSync(join(here, ".check-"));
function main() {
  const files = readdirSync(dir).filter((f) => f.endsWith(".json"));
  if (files.length === 0) throw new Error(`no dashboards in ${dir}`);
  const wrapped = files.map((f) => {
    const out = join(work, f.replace(/\.json$/, ".ts"));
    const json = readFileSync(join(dir, f), "utf8");
    JSON.parse(json); // a syntax error is reported as such, not as a TS error
    writeFileSync(out, `import type { ProvisionedDashboard } from "../dashboard-types.js";\nexport const dashboard: ProvisionedDashboard = ${json};\n`);
    return out;
  });
  try {
    execFileSync(join(here, "node_modules/.bin/tsc"),
      ["--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--skipLibCheck", ...wrapped],
      { stdio: "inherit" });
  } catch {
    console.error(`dashboards type-check FAILED (${dir})`);
    process.exitCode = 1;
    return;
  }
  console.log(`dashboards type-check: ${files.join(", ")} OK`);
}
try {
  main();
} finally {
  rmSync(work, { recursive: true, force: true });
}
