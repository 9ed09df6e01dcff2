//! Traces: the W3C `traceparent` of the caller is continued, each request gets a server span
//! `METHOD /route` and the seed's manual child spans. One tracer provider per app instance (no
//! global provider): the generator embeds the app next to its own provider.
//!
//! Without span export the provider has no processor, yet ids are still generated, so logs and
//! exemplars carry trace ids either way.

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use crate::config::Config;

pub struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl Tracing {
    pub fn new(config: &Config) -> Tracing {
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .build();
        let mut builder = SdkTracerProvider::builder().with_resource(resource);
        if config.otlp_export || config.otlp_traces_endpoint.is_some() {
            // Endpoint, headers and timeout come from the standard OTEL_EXPORTER_OTLP_* variables
            // unless the embedder gave the endpoint.
            let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
            if let Some(url) = &config.otlp_traces_endpoint {
                exporter =
                    opentelemetry_otlp::WithExportConfig::with_endpoint(exporter, url.clone());
            }
            match exporter.build() {
                Ok(exporter) => builder = builder.with_batch_exporter(exporter),
                Err(e) => eprintln!("todo-api: OTLP span export disabled: {e}"),
            }
        }
        let provider = builder.build();
        let tracer = provider.tracer("todo-api");
        Tracing { provider, tracer }
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

/// Trace and span id of the context's current span, as lowercase hex.
pub fn ids(cx: &Context) -> (String, String) {
    let sc = cx.span().span_context().clone();
    (sc.trace_id().to_string(), sc.span_id().to_string())
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
