//! The fault timeline at run time: which requests get fault headers (per request, the
//! generator's ground truth) and the server-side rules set through the todo-api's fault API.
//!
//! (CONTRACT: signatures below. OWNER: telemetry helper.)

use std::time::Duration;

use crate::plan::Plan;

/// Fault headers for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderFault {
    /// Index into `plan.faults`.
    pub window: usize,
    /// `X-Fault-Delay` in milliseconds (jitter already applied).
    pub delay_ms: Option<u64>,
    /// `X-Fault-Status`.
    pub status: Option<u16>,
    /// `X-Fault-Span`.
    pub span: Option<String>,
}

impl HeaderFault {
    /// "latency" or "error" (the `kind` label and `Counts::faults_*`).
    pub fn kind(&self) -> &'static str {
        if self.status.is_some() { "error" } else { "latency" }
    }
}

/// Decides per request (pure, seeded by the caller's rng) whether header faults apply.
#[derive(Debug, Clone)]
pub struct HeaderFaults {}

impl HeaderFaults {
    pub fn new(_plan: &Plan) -> Self {
        todo!("telemetry helper")
    }
    /// True when the plan has no header-fault windows (the executor skips the call).
    pub fn is_empty(&self) -> bool {
        todo!("telemetry helper")
    }
    /// `elapsed` = intended start offset of the request from the start of the load.
    pub fn pick(&self, _op: usize, _elapsed: Duration, _rng: &mut impl rand::Rng) -> Option<HeaderFault> {
        todo!("telemetry helper")
    }
}

/// Server-side fault windows: sets each rule through `POST {base}/admin/faults` at its start
/// (the rule expires by itself at the window's end) and clears them on `stop`.
pub struct ServerFaults {}

impl ServerFaults {
    /// `start` is the instant the load started; `token` the fault API bearer token.
    pub fn spawn(_plan: &Plan, _base_url: String, _token: Option<String>, _start: tokio::time::Instant) -> ServerFaults {
        todo!("telemetry helper")
    }
    /// Cancels pending windows and deletes the rules this run set. Errors are returned as text.
    pub async fn stop(self) -> Vec<String> {
        todo!("telemetry helper")
    }
}
