// Strict check of custom resources (monitoring.coreos.com: ServiceMonitor, PodMonitor,
// PrometheusRule, Prometheus, Alertmanager, ...): unknown fields are errors. The ajv validators
// of @kubernetes-models/prometheus-operator check types, enums and required fields but accept
// any extra key (its schemas carry no `additionalProperties: false`), so a misspelt field such as
// `scrapeProtocl` or an endpoint `prt:` passes them. The same package ships TypeScript interfaces
// generated from the CRDs: each object is written as a literal typed with its interface, and
// tsc's excess-property check rejects any key the CRD does not define, at every depth.
// usage: node check-crds-strict.mjs RENDERED.yaml...   (exit 1 on any error; 0 objects = error)
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as yaml from "js-yaml";

const here = dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(join(here, ".crds-"));
let checked = 0;
try {
  const files = [];
  const names = [];
  for (const file of process.argv.slice(2)) {
    for (const doc of yaml.loadAll(readFileSync(file, "utf8"))) {
      if (!doc || !String(doc.apiVersion).startsWith("monitoring.coreos.com/")) continue;
      const version = doc.apiVersion.split("/")[1];
      const out = join(work, `o${checked}.ts`);
      const mod = `@kubernetes-models/prometheus-operator/monitoring.coreos.com/${version}/${doc.kind}`;
      writeFileSync(out, `// ${file}: ${doc.kind}/${doc.metadata?.namespace ?? "-"}/${doc.metadata?.name}\n`
        + `import type { I${doc.kind} } from "${mod}";\n`
        + `export const o: I${doc.kind} = ${JSON.stringify(doc, null, 2)};\n`);
      files.push(out);
      names.push(`${doc.kind}/${doc.metadata?.name}`);
      checked++;
    }
  }
  if (checked === 0) throw new Error("no custom resources in the given files");
  try {
    execFileSync(join(here, "node_modules/.bin/tsc"),
      ["--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--skipLibCheck", ...files],
      { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
  } catch (e) {
    // Name the object behind each error (the .ts file's first line).
    const text = `${e.stdout ?? ""}${e.stderr ?? ""}`.replace(/[^\s(]*\.crds-[^/]+\/o(\d+)\.ts/g,
      (_, i) => names[Number(i)]);
    console.error(text.trim());
    console.error(`custom resources strict check: FAILED (${checked} checked)`);
    process.exitCode = 1;
  }
  if (!process.exitCode) console.log(`custom resources strict check: ${checked} objects, no unknown field`);
} catch (e) {
  console.error(`custom resources strict check: ${e.message ?? e}`);
  process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
