//! Traces: the W3C `traceparent` of the caller is continued, each request gets a server span
//! `METHOD /route` and the seed's manual child spans. One tracer provider per app instance (no
//! global provider): the generator embeds the app next to its own provider.
//!
//! Sampling is parent-based: a caller's sampled flag decides for its request, roots follow
//! `Config::sampler`. A trace id is shown (log line, exemplar) only when its span is sampled
//! and an exporter is configured, so every id a person sees can be looked up.

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider, SpanData, SpanExporter};

use crate::config::{Config, OtlpProtocol, SpanMemory};

pub struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    /// A span exporter is configured: only then are trace ids shown (logs, exemplars).
    exporting: bool,
}

/// Collects finished spans into `Config::span_memory`.
#[derive(Debug)]
struct MemoryExporter(SpanMemory);

impl SpanExporter for MemoryExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(batch);
        Ok(())
    }
}

/// The span exporter `config` asks for; `Ok(None)` = no export.
fn otlp_exporter(config: &Config) -> Result<Option<opentelemetry_otlp::SpanExporter>, String> {
    use opentelemetry_otlp::WithExportConfig as _;
    if !(config.otlp_export || config.otlp_traces_endpoint.is_some()) {
        return Ok(None);
    }
    // Endpoint, headers and timeout come from the standard OTEL_EXPORTER_OTLP_* variables
    // unless the embedder gave the endpoint.
    let built = match config.otlp_protocol {
        OtlpProtocol::HttpProtobuf => {
            let mut b = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
            if let Some(url) = &config.otlp_traces_endpoint {
                b = b.with_endpoint(url.clone());
            }
            b.build()
        }
        OtlpProtocol::Grpc => {
            let mut b = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            if let Some(url) = &config.otlp_traces_endpoint {
                b = b.with_endpoint(url.clone());
            }
            b.build()
        }
    };
    built.map(Some).map_err(|e| e.to_string())
}

impl Tracing {
    /// An OTLP exporter that cannot be built (a bad endpoint URL, say) is reported on stderr
    /// and export stays off.
    pub fn new(config: &Config) -> Tracing {
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .build();
        let root = match config.sampler {
            crate::config::Sampler::AlwaysOn => Sampler::AlwaysOn,
            crate::config::Sampler::AlwaysOff => Sampler::AlwaysOff,
            crate::config::Sampler::Ratio(r) => Sampler::TraceIdRatioBased(r),
        };
        let mut builder = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_sampler(Sampler::ParentBased(Box::new(root)));
        let mut exporting = false;
        match otlp_exporter(config) {
            Ok(Some(exporter)) => {
                builder = builder.with_batch_exporter(exporter);
                exporting = true;
            }
            Ok(None) => {}
            Err(e) => eprintln!("todo-api: OTLP span export disabled: {e}"),
        }
        if let Some(memory) = &config.span_memory {
            builder = builder.with_simple_exporter(MemoryExporter(memory.clone()));
            exporting = true;
        }
        let provider = builder.build();
        let tracer = provider.tracer("todo-api");
        Tracing {
            provider,
            tracer,
            exporting,
        }
    }

    /// Trace and span id of the context's span, as lowercase hex, when that span is sampled
    /// and exported: ids of spans nobody can look up are never shown.
    pub fn shown_ids(&self, cx: &Context) -> Option<(String, String)> {
        let span = cx.span();
        let sc = span.span_context();
        (self.exporting && sc.is_valid() && sc.is_sampled())
            .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
    }

    /// Starts the server span under the caller's context (or a new trace).
    pub fn server_span(
        &self,
        parent: &Context,
        name: String,
        attributes: Vec<KeyValue>,
    ) -> Context {
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, parent);
        parent.with_span(span)
    }

    /// Starts an internal child span of `parent`.
    pub fn child(&self, parent: &Context, name: &'static str) -> Context {
        let span = self.tracer.start_with_context(name, parent);
        parent.with_span(span)
    }

    pub fn shutdown(&self) {
        let _ = self.provider.force_flush();
        let _ = self.provider.shutdown();
    }
}

/// The caller's context from a `traceparent` header (version 00 only; anything malformed
/// starts a new trace, as the W3C spec asks).
pub fn parent_from_header(traceparent: Option<&str>) -> Context {
    let Some(h) = traceparent else {
        return Context::new();
    };
    let parts: Vec<&str> = h.trim().split('-').collect();
    if parts.len() < 4
        || parts[0].len() != 2
        || parts[0] == "ff"
        || parts[1].len() != 32
        || parts[2].len() != 16
        || parts[3].len() != 2
    {
        return Context::new();
    }
    let (Ok(trace_id), Ok(span_id), Ok(flags)) = (
        TraceId::from_hex(parts[1]),
        SpanId::from_hex(parts[2]),
        u8::from_str_radix(parts[3], 16),
    ) else {
        return Context::new();
    };
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return Context::new();
    }
    let sc = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    );
    Context::new().with_remote_span_context(sc)
}

/// Marks the current span failed.
pub fn set_error(cx: &Context, message: impl Into<String>) {
    cx.span().set_status(Status::error(message.into()));
}

pub fn end(cx: &Context) {
    cx.span().end();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_valid_traceparent_only() {
        let cx = parent_from_header(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        for bad in [
            "",
            "00-xyz-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ] {
            assert!(
                !parent_from_header(Some(bad))
                    .span()
                    .span_context()
                    .is_valid(),
                "{bad}"
            );
        }
    }
}
