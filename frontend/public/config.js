// Runtime settings of the tp2devops frontend, read once at start-up (see README.md).
// Replace this file (a volume or ConfigMap mounted over it) to change them without a rebuild.
window.TP2DEVOPS_CONFIG = {
  // Where the browser posts its spans (OTLP/HTTP JSON). The default is same-origin: nginx
  // proxies it to the Collector, so no CORS is involved.
  otlpTracesUrl: "/otlp/v1/traces",
  // false: no spans are made or exported, and API calls carry no traceparent.
  tracing: true,
};
