import { describe, expect, it } from "vitest";
import { DEFAULT_CONFIG, readConfig } from "./config";

describe("readConfig", () => {
  it("defaults when config.js set nothing or something malformed", () => {
    expect(readConfig(undefined)).toEqual(DEFAULT_CONFIG);
    expect(readConfig("nope")).toEqual(DEFAULT_CONFIG);
    expect(readConfig({ otlpTracesUrl: 42, tracing: "yes" })).toEqual(DEFAULT_CONFIG);
    expect(readConfig({ otlpTracesUrl: "   " })).toEqual(DEFAULT_CONFIG);
  });

  it("takes the endpoint and the switch", () => {
    expect(readConfig({ otlpTracesUrl: " https://otel.example/v1/traces ", tracing: false })).toEqual({
      otlpTracesUrl: "https://otel.example/v1/traces",
      tracing: false,
    });
  });
});
