// Browser tracing: a WebTracerProvider whose fetch instrumentation starts a CLIENT span per API
// call and puts its W3C `traceparent` (sampled) on the request, so the todo-api continues the
// same trace; the document-load instrumentation records each page load. Spans go in batches to
// the OTLP/HTTP endpoint of the runtime config (same-origin `/otlp/v1/traces` by default).
import { registerInstrumentations } from "@opentelemetry/instrumentation";
import { DocumentLoadInstrumentation } from "@opentelemetry/instrumentation-document-load";
import { FetchInstrumentation } from "@opentelemetry/instrumentation-fetch";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  WebTracerProvider,
  type ReadableSpan,
  type Span,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-web";
import { ATTR_SERVICE_NAME, ATTR_URL_FULL } from "@opentelemetry/semantic-conventions";
import type { RuntimeConfig } from "./config";

/** The `service.name` of every browser span (the service graph's frontend node). */
export const SERVICE_NAME = "tp2devops-frontend";

/**
 * `/api/todos/42?x=1` → `/api/todos/{id}`: the low-cardinality path the span is named after, so
 * span metrics group calls per endpoint rather than per todo. `undefined` for non-API URLs.
 */
export function apiUrlTemplate(url: string, origin = "http://localhost"): string | undefined {
  let path: string;
  try {
    path = new URL(url, origin).pathname;
  } catch {
    return undefined;
  }
  if (!path.startsWith("/api/")) return undefined;
  return path
    .split("/")
    .map((seg) => (/^\d+$/.test(seg) ? "{id}" : seg))
    .join("/");
}

/**
 * Renames fetch spans from the bare method (`GET`) to `GET /api/todos/{id}` (the semantic
 * conventions' `{method} {url.template}`) and records `url.template`. Done at span start, where
 * the SDK span still accepts changes; the fetch instrumentation has no hook that sees the URL.
 */
export class ApiSpanNamer implements SpanProcessor {
  onStart(span: Span): void {
    const url = span.attributes[ATTR_URL_FULL];
    if (typeof url !== "string") return;
    const template = apiUrlTemplate(url, globalThis.location?.origin);
    if (!template) return;
    span.setAttribute("url.template", template);
    span.updateName(`${span.name} ${template}`);
  }
  onEnd(_span: ReadableSpan): void {}
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Installs the provider and instrumentations; returns it (tests and shutdown), or null when off. */
export function startTracing(config: RuntimeConfig): WebTracerProvider | null {
  if (!config.tracing) return null;
  const exportUrl = new URL(config.otlpTracesUrl, window.location.href).href;
  const provider = new WebTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: SERVICE_NAME,
      "service.namespace": "tp2devops",
    }),
    spanProcessors: [
      new ApiSpanNamer(),
      // A short delay: a browser tab may close at any time (the web batch processor also
      // flushes when the page is hidden).
      new BatchSpanProcessor(new OTLPTraceExporter({ url: exportUrl }), {
        scheduledDelayMillis: 1000,
      }),
    ],
  });
  // Default sampler: parent-based always-on, so every API call's traceparent says sampled (01)
  // and the todo-api records and exports its side of the trace.
  provider.register();
  registerInstrumentations({
    instrumentations: [
      new DocumentLoadInstrumentation(),
      new FetchInstrumentation({
        // The exporter's own POSTs are not traced (that would trace the tracing).
        ignoreUrls: [exportUrl],
        // Same-origin URLs (/api) always get traceparent; nothing cross-origin does.
        propagateTraceHeaderCorsUrls: [],
      }),
    ],
  });
  return provider;
}
