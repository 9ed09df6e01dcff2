//! The generator's own telemetry: `/metrics` (prometheus-client, `trafficgen_*`), linger,
//! final Pushgateway / remote-write pushes, OTLP metrics and client spans.
//!
//! (CONTRACT: signatures below. OWNER: telemetry helper.)

use crate::plan::Plan;
use crate::recorder::{Snapshot, SpanRecord};
use crate::report::Report;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("{0}")]
    Other(String),
}

pub struct Telemetry {}

impl Telemetry {
    /// Starts what the plan asks for (metrics server, OTLP exporters when
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is set). Cheap when nothing is configured.
    pub async fn start(_plan: &Plan, _run_id: &str) -> Result<Telemetry, TelemetryError> {
        todo!("telemetry helper")
    }
    /// Where the executor sends sampled finished requests (None: spans are not exported).
    pub fn span_sender(&self) -> Option<tokio::sync::mpsc::Sender<SpanRecord>> {
        todo!("telemetry helper")
    }
    /// The trace sampling ratio in effect (0 when spans are not exported).
    pub fn sample_ratio(&self) -> f64 {
        todo!("telemetry helper")
    }
    /// Called at every interval tick with the merged snapshot.
    pub fn observe(&mut self, _snapshot: &Snapshot) {
        todo!("telemetry helper")
    }
    /// Final values (incl. threshold and assertion state from the report), pushes, span flush,
    /// then keeps `/metrics` up for the linger. Never fails the run: problems are printed to
    /// stderr and returned as text.
    pub async fn finish(self, _report: &Report) -> Vec<String> {
        todo!("telemetry helper")
    }
}
