//! OTLP metrics (gRPC or HTTP/protobuf, when an OTLP metrics endpoint is configured): the same counters and gauges as
//! `/metrics`, as observable instruments whose callbacks read the latest families, exported
//! with cumulative temporality by the SDK's periodic reader and flushed at the end.
//!
//! Histograms are left out: the OpenTelemetry SDK aggregates individual measurements and has
//! no way to take buckets that are already counted (the HdrHistograms); `/metrics`, the
//! pushes and the report carry them.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{MeterProvider as _, ObservableCounter, ObservableGauge};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};

use super::Shared;
use super::metrics::{Kind, Value};
use super::otlp_env::{Protocol, Signal};

/// How often the reader exports while the run goes on.
pub const INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum OtlpMetricsError {
    #[error("OTLP metric exporter ({protocol}): {message}")]
    Build {
        protocol: &'static str,
        message: String,
    },
    #[error("OTLP metric flush: {0}")]
    Flush(String),
}

pub struct OtlpMetrics {
    provider: SdkMeterProvider,
    // The callbacks live as long as the provider; the handles are kept for clarity of
    // ownership, not because dropping them would unregister anything.
    _counters: Vec<ObservableCounter<f64>>,
    _gauges: Vec<ObservableGauge<f64>>,
}

impl OtlpMetrics {
    /// Must be called inside the tokio runtime (the gRPC channel's worker runs on it).
    pub fn start(signal: &Signal, shared: Arc<Shared>) -> Result<OtlpMetrics, OtlpMetricsError> {
        let build = |message: String| OtlpMetricsError::Build {
            protocol: signal.protocol.as_str(),
            message,
        };
        let headers = crate::secrets::header_map(&signal.headers).map_err(build)?;
        let exporter = match signal.protocol {
            Protocol::Grpc => opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(signal.endpoint.clone())
                .with_timeout(Duration::from_secs(10))
                .with_metadata(
                    opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers),
                )
                .build(),
            Protocol::HttpProtobuf => opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(signal.endpoint.clone())
                .with_timeout(Duration::from_secs(10))
                .with_headers(signal.headers.iter().cloned().collect())
                .build(),
        }
        .map_err(|e| build(crate::secrets::scrub(&e.to_string(), &[])))?;
        let reader = PeriodicReader::builder(exporter)
            .with_interval(INTERVAL)
            .build();
        let provider = SdkMeterProvider::builder()
            .with_resource(super::spans::resource())
            .with_reader(reader)
            .build();
        let meter = provider.meter("trafficgen");
        let mut counters = Vec::new();
        let mut gauges = Vec::new();
        for f in shared.families() {
            let name = f.name;
            let read = {
                let shared = shared.clone();
                move |observe: &dyn Fn(f64, &[KeyValue])| {
                    let fams = shared.families.read().unwrap_or_else(|p| p.into_inner());
                    if let Some(f) = fams.iter().find(|f| f.name == name) {
                        for s in &f.series {
                            if let Value::Number(v) = s.value {
                                let attrs: Vec<KeyValue> = s
                                    .labels
                                    .iter()
                                    .map(|(k, v)| KeyValue::new(*k, v.clone()))
                                    .collect();
                                observe(v, &attrs);
                            }
                        }
                    }
                }
            };
            match f.kind {
                Kind::Counter => counters.push(
                    meter
                        .f64_observable_counter(name)
                        .with_description(f.help)
                        .with_callback(move |o| read(&|v, a| o.observe(v, a)))
                        .build(),
                ),
                Kind::Gauge => gauges.push(
                    meter
                        .f64_observable_gauge(name)
                        .with_description(f.help)
                        .with_callback(move |o| read(&|v, a| o.observe(v, a)))
                        .build(),
                ),
                Kind::Histogram => {}
            }
        }
        Ok(OtlpMetrics {
            provider,
            _counters: counters,
            _gauges: gauges,
        })
    }

    /// Exports the final values and stops the reader (blocking I/O, so on a blocking thread).
    pub async fn finish(self) -> Result<(), OtlpMetricsError> {
        let provider = self.provider;
        tokio::task::spawn_blocking(move || {
            provider
                .force_flush()
                .map_err(|e| OtlpMetricsError::Flush(e.to_string()))?;
            provider
                .shutdown()
                .map_err(|e| OtlpMetricsError::Flush(e.to_string()))
        })
        .await
        .map_err(|e| OtlpMetricsError::Flush(e.to_string()))?
    }
}
