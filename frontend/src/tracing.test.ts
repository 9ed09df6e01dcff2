import { describe, expect, it } from "vitest";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { ApiSpanNamer, apiUrlTemplate, startTracing } from "./tracing";

describe("apiUrlTemplate", () => {
  it("replaces numeric ids and drops origin and query", () => {
    expect(apiUrlTemplate("http://h:5173/api/todos?completed=true&limit=100")).toBe("/api/todos");
    expect(apiUrlTemplate("/api/todos/42")).toBe("/api/todos/{id}");
    expect(apiUrlTemplate("https://x/api/todos/7/")).toBe("/api/todos/{id}/");
  });
  it("is undefined outside /api", () => {
    expect(apiUrlTemplate("/otlp/v1/traces")).toBeUndefined();
    expect(apiUrlTemplate("/")).toBeUndefined();
  });
});

describe("ApiSpanNamer", () => {
  it("names fetch spans METHOD /template and records url.template", async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      spanProcessors: [new ApiSpanNamer(), new SimpleSpanProcessor(exporter)],
    });
    const tracer = provider.getTracer("test");
    tracer.startSpan("PATCH", { attributes: { "url.full": "http://localhost/api/todos/3" } }).end();
    tracer.startSpan("GET", { attributes: { "url.full": "http://localhost/other" } }).end();
    tracer.startSpan("documentLoad").end();
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual(["PATCH /api/todos/{id}", "GET", "documentLoad"]);
    expect(spans[0].attributes["url.template"]).toBe("/api/todos/{id}");
    expect(spans[1].attributes["url.template"]).toBeUndefined();
    await provider.shutdown();
  });
});

describe("startTracing", () => {
  it("installs nothing when tracing is off", () => {
    expect(startTracing({ otlpTracesUrl: "/otlp/v1/traces", tracing: false })).toBeNull();
  });
});
