//! The binary's own `tracing` setup: human log lines on stderr (`RUST_LOG`, default `warn`)
//! and, when an OTLP endpoint is given, the generator's own `info`-level spans exported with
//! `service.name=trafficgen`. Called once by `main`; library code and tests never install a
//! global subscriber.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("OTLP span exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadySet(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps the OTLP tracer alive; dropping it flushes what is batched.
#[must_use = "dropping the guard stops span export"]
pub struct TracingGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown_with_timeout(Duration::from_secs(5));
        }
    }
}

/// Installs the global subscriber. `otlp_endpoint`: usually
/// `std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok()`.
pub fn init_tracing(otlp_endpoint: Option<&str>) -> Result<TracingGuard, InitError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let Some(endpoint) = otlp_endpoint.filter(|e| !e.trim().is_empty()) else {
        tracing_subscriber::registry().with(fmt).try_init()?;
        return Ok(TracingGuard { provider: None });
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_resource(super::spans::resource())
        .with_batch_exporter(exporter)
        .build();
    // Only the generator's own coarse spans (run, phases): per-request work is never a
    // `tracing` span, the client spans are built by `spans`.
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("trafficgen"))
        .with_filter(EnvFilter::new("trafficgen=info"));
    tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()?;
    Ok(TracingGuard {
        provider: Some(provider),
    })
}
