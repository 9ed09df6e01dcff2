// Runtime settings: `window.TP2DEVOPS_CONFIG`, set by /config.js (public/config.js, served by
// nginx and replaceable without a rebuild). Anything missing or malformed falls back to the
// defaults, so a broken config.js never stops the UI from working.

export interface RuntimeConfig {
  /** Where spans are posted (OTLP/HTTP JSON); relative = same origin, proxied by nginx. */
  otlpTracesUrl: string;
  /** false: no tracer is installed; API calls go out without traceparent. */
  tracing: boolean;
}

export const DEFAULT_CONFIG: RuntimeConfig = {
  otlpTracesUrl: "/otlp/v1/traces",
  tracing: true,
};

declare global {
  interface Window {
    TP2DEVOPS_CONFIG?: unknown;
  }
}

export function readConfig(raw: unknown = window.TP2DEVOPS_CONFIG): RuntimeConfig {
  const config = { ...DEFAULT_CONFIG };
  if (typeof raw !== "object" || raw === null) return config;
  const r = raw as Record<string, unknown>;
  if (typeof r.otlpTracesUrl === "string" && r.otlpTracesUrl.trim() !== "") {
    config.otlpTracesUrl = r.otlpTracesUrl.trim();
  }
  if (typeof r.tracing === "boolean") config.tracing = r.tracing;
  return config;
}
