// Validates rendered Kubernetes manifests (multi-document YAML files given as arguments)
// against the published schemas: core/apps/batch/rbac kinds via kubernetes-models (ajv schemas
// built from the Kubernetes OpenAPI), ServiceMonitor/PrometheusRule/Prometheus via
// @kubernetes-models/prometheus-operator (built from the operator's CRDs). A kind with no
// schema is a failure, not a skip.
import { readFileSync } from "node:fs";
import * as yaml from "js-yaml";

async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const path = group === "monitoring.coreos.com"
    ? `@kubernetes-models/prometheus-operator/monitoring.coreos.com/${version}/${kind}`
    : `kubernetes-models/${group ? `${group}/` : ""}${version}/${kind}`;
  const mod = await import(path);
  return mod[kind];
}

let failed = 0;
let passed = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of yaml.loadAll(readFileSync(file, "utf8"))) {
    if (!doc) continue;
    const name = `${file}: ${doc.kind}/${doc.metadata?.namespace ?? "-"}/${doc.metadata?.name}`;
    try {
      // kustomize folds a generated Secret's base64 at 70 columns; the API server's decoder
      // skips the line breaks, this schema's "byte" format does not: compare like the server.
      if (doc.kind === "Secret" && doc.data) {
        for (const k of Object.keys(doc.data)) doc.data[k] = String(doc.data[k]).replace(/\s+/g, "");
      }
      const Model = await modelFor(doc.apiVersion, doc.kind);
      new Model(doc).validate();
      passed++;
    } catch (e) {
      failed++;
      console.error(`INVALID ${name}: ${e.message ?? e}`);
    }
  }
}
console.log(`k8s schema validation: ${passed} valid, ${failed} invalid`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
