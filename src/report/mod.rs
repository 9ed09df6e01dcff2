//! The versioned JSON report: built from the final `Snapshot` and the per-second timeline,
//! written on every exit path (also on SIGINT/SIGTERM), read back for `report merge|render` and
//! `trafficgen verify REPORT`. Histograms are stored as HdrHistogram V2 (base64), so the reports
//! of N segments merge into one exact result.
//!
//! (CONTRACT: the types and function signatures below are what the engine, telemetry and verify
//! code against. OWNER: report helper — fills in the bodies, may add fields and functions.)

use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::plan::{Plan, Segment};
use crate::recorder::{Counts, Snapshot, TraceRef};

pub const VERSION: u32 = 1;

/// Facts of the run the snapshot does not hold.
#[derive(Debug, Clone)]
pub struct RunMeta {
    pub run_id: String,
    pub started_at: SystemTime,
    pub ended_at: SystemTime,
    /// The run was stopped by SIGINT/SIGTERM before the load ended.
    pub interrupted: bool,
    /// A threshold with `abort_on_fail` stopped the run.
    pub aborted: Option<String>,
    /// The base URL requests went to (the embedded todo-api's when no target was given).
    pub target_url: String,
}

/// Percentiles of one histogram, milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// Serialized HdrHistograms (V2 + base64), microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    pub response_time: String,
    pub service_time: String,
    pub lag: String,
}

/// One operation's (or the whole run's) result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpReport {
    pub counts: Counts,
    /// Completed requests per second over the load's duration.
    pub rate: f64,
    pub response_time_ms: Percentiles,
    pub service_time_ms: Percentiles,
    pub lag_ms: Percentiles,
    pub histograms: Histograms,
}

/// One second of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Seconds since the start of the load (end of this one-second bucket).
    pub t: u64,
    pub target_rate: f64,
    pub requests: u64,
    pub errors: u64,
    pub dropped: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub in_flight: u64,
    pub vus: u64,
    /// Indexes into the report's `faults` of the windows active in this second.
    pub faults: Vec<usize>,
}

/// One threshold's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    pub source: String,
    pub passed: bool,
    /// The observed value (worst window for windowed thresholds); `None` = no samples (fails).
    pub observed: Option<f64>,
    pub message: String,
}

/// One observability assertion's result (filled by `verify`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssertionResult {
    pub name: String,
    pub passed: bool,
    pub query: String,
    pub observed: Option<f64>,
    pub expected: Option<String>,
    pub attempts: u32,
    pub message: String,
}

/// A fault window as it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultReport {
    pub start_s: f64,
    pub end_s: f64,
    pub kind: String,
    pub via: String,
    pub ops: Vec<String>,
    pub route: Option<String>,
    pub share: f64,
    /// Requests the generator faulted with headers in this window (server-side: `None`).
    pub injected: Option<u64>,
}

/// The whole report (`version` = `VERSION`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub version: u32,
    pub run_id: String,
    pub scenario: String,
    pub source: Option<String>,
    pub target_url: String,
    /// RFC 3339.
    pub started_at: String,
    pub ended_at: String,
    pub duration_s: f64,
    pub interrupted: bool,
    pub aborted: Option<String>,
    pub segment: Segment,
    pub totals: OpReport,
    /// Operation name → result, in plan order.
    pub ops: Vec<(String, OpReport)>,
    pub timeline: Vec<TimelinePoint>,
    pub faults: Vec<FaultReport>,
    pub slowest: Vec<TraceRef>,
    pub failed: Vec<TraceRef>,
    pub faulted: Vec<TraceRef>,
    pub thresholds: Vec<ThresholdResult>,
    pub verify: Vec<AssertionResult>,
    /// All thresholds and assertions passed.
    pub passed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: not a trafficgen report: {message}")]
    Format { path: String, message: String },
    #[error("cannot merge: {0}")]
    Merge(String),
}

/// Accumulates the per-second timeline from the interval snapshots.
#[derive(Debug, Default)]
pub struct Timeline {
    pub points: Vec<TimelinePoint>,
}

impl Timeline {
    pub fn new(_plan: &Plan) -> Self {
        todo!("report helper")
    }
    /// Called at every interval tick with the merged snapshot.
    pub fn observe(&mut self, _snapshot: &Snapshot) {
        todo!("report helper")
    }
}

impl Report {
    /// The report of a finished (or interrupted) run, thresholds not yet evaluated.
    pub fn build(_plan: &Plan, _last: &Snapshot, _timeline: Timeline, _meta: RunMeta) -> Report {
        todo!("report helper")
    }
    pub fn write(&self, _path: &Path) -> Result<(), ReportError> {
        todo!("report helper")
    }
    pub fn read(_path: &Path) -> Result<Report, ReportError> {
        todo!("report helper")
    }
    /// The end summary printed to stdout (per operation counts, rates, errors by kind,
    /// percentiles, dropped, lag, thresholds, assertions, slowest/failed trace ids).
    pub fn summary(&self) -> String {
        todo!("report helper")
    }
}

/// Merges the reports of the N segments of one distributed run into one exact result
/// (counters summed, histograms added, percentiles recomputed, timelines added per second).
pub fn merge(_reports: &[Report]) -> Result<Report, ReportError> {
    todo!("report helper")
}
