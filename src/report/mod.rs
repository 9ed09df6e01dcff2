//! The versioned JSON report: built from the final `Snapshot` and the per-second timeline,
//! written on every exit path (also on SIGINT/SIGTERM), read back for `report merge|render` and
//! `trafficgen verify REPORT`. Histograms are stored as HdrHistogram V2 (base64), so the reports
//! of N segments merge into one exact result.
//!
//! The report is data: it never evaluates thresholds or decides the verdict (that is
//! `verdict`, which fills `thresholds`, `verify` and `verdict` through the setters below).

use std::time::SystemTime;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::plan::Segment;
use crate::recorder::{Counts, TraceRef};

mod build;
mod file;
pub mod hist;
pub mod html;
pub mod junit;
mod merge;
mod schema;
mod summary;

pub use merge::merge;
pub use schema::json_schema;

/// 2: thresholds kept as source lines; the `verdict` record.
pub const VERSION: u32 = 2;

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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Histograms {
    pub response_time: String,
    pub service_time: String,
    pub lag: String,
    /// Per-phase histograms (empty strings in reports written before them).
    #[serde(default)]
    pub phases: PhaseHistograms,
}

/// Serialized per-phase histograms (V2 + base64), microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PhaseHistograms {
    pub connect: String,
    pub tls: String,
    pub ttfb: String,
    pub receive: String,
}

/// Where the time of requests went, ms: `connect` and `tls` per new connection (charged to
/// the request that waited for it), `ttfb` from writing the request to the first response
/// byte, `receive` from the first to the last byte. The name is resolved once before the load,
/// so there is no per-request DNS figure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PhasePercentiles {
    pub connect: Percentiles,
    pub tls: Percentiles,
    pub ttfb: Percentiles,
    pub receive: Percentiles,
}

/// One operation's (or the whole run's) result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OpReport {
    pub counts: Counts,
    /// Requests per second of real elapsed time (`Report::elapsed_s`, the drain included).
    pub rate: f64,
    pub response_time_ms: Percentiles,
    pub service_time_ms: Percentiles,
    pub lag_ms: Percentiles,
    /// Per-phase timings (all zero in reports written before them).
    #[serde(default)]
    pub phases_ms: PhasePercentiles,
    pub histograms: Histograms,
    /// A flow's steps, in order, each with its own requests and latencies (its redirects
    /// included). The flow's own figures above count whole flows: one request per flow, its
    /// response time the flow's duration (from the intended start to the last step's last
    /// byte), its status the last step's, its error the step's that ended it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<(String, OpReport)>,
}

/// One second of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    /// Response time p95 of this second, ms (0 when absent: reports written before it).
    #[serde(default)]
    pub p95_ms: f64,
    /// Service time (from the actual send) p50/p95/p99 of this second, ms.
    #[serde(default)]
    pub service_p50_ms: f64,
    #[serde(default)]
    pub service_p95_ms: f64,
    #[serde(default)]
    pub service_p99_ms: f64,
    /// Schedule lag (actual send − intended start) p99 and max of this second, ms.
    #[serde(default)]
    pub lag_p99_ms: f64,
    #[serde(default)]
    pub lag_max_ms: f64,
    /// This second's failures by kind, in `ErrorKind::ALL` order (connect, timeout, io,
    /// protocol, status_4xx, status_5xx, invalid_request, panic, tls, capture_missing,
    /// cross_origin, unexpected_status); they add up to `errors`.
    #[serde(default, deserialize_with = "crate::recorder::snapshot::error_counts")]
    pub errors_by_kind: [u64; crate::recorder::ErrorKind::COUNT],
    /// Arrivals of this second that were planned, and that were abandoned (see
    /// `Counts::planned`, `Counts::abandoned`); 0 in reports written before them.
    #[serde(default)]
    pub planned: u64,
    #[serde(default)]
    pub abandoned: u64,
}

/// One threshold's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ThresholdResult {
    pub source: String,
    pub passed: bool,
    /// The observed value (worst window for windowed thresholds); `None` = no samples (fails).
    pub observed: Option<f64>,
    pub message: String,
    /// Windowed thresholds: the worst window, `[start_s, end_s]` since the start of the load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<[f64; 2]>,
}

/// What the report keeps of the plan for later stages (`report render`, `report merge`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReportConfig {
    /// Grafana base URL (scenario `verify.grafana_url` / `--grafana-url`) for trace links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grafana_url: Option<String>,
    /// The plan's thresholds as `key: expression` lines (`Threshold::source`), so `report
    /// merge` parses them again with the plan's own parser and evaluates them on merged data.
    #[serde(default)]
    pub thresholds: Vec<String>,
    /// The scenario's `compare:` rules (`key: expression`), which `report compare` applies
    /// when this report is the new run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compare: Vec<String>,
    /// The seed of every random choice of the run: `--seed N` (or the scenario's `seed`)
    /// replays them. `None` in reports written before it was kept, and in a merge of reports
    /// that do not agree on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// `Plan::fingerprint` of the resolved plan: equal for every segment of one run, so `report
    /// merge` refuses reports of different plans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Set by `report merge`: how many segment reports this one was merged from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_segments: Option<u32>,
    /// Scenario `load.allow_schedule_miss`: a missed schedule is only a warning.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_schedule_miss: bool,
}

/// How a run (or a merge, or a re-verify) was judged: the state, the exit code it maps to
/// (`exit::code`) and the summary's last line. Set only from a `verdict::Verdict`, so the
/// summary, the report and the exit code cannot disagree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VerdictRecord {
    pub state: VerdictState,
    pub exit_code: u8,
    /// The summary's last line, e.g. `PASSED` or `FAILED: 1 threshold(s) failed`.
    pub message: String,
}

impl Default for VerdictRecord {
    /// Not judged yet (a report being built).
    fn default() -> Self {
        VerdictRecord {
            state: VerdictState::NotJudged,
            exit_code: 1,
            message: "NOT JUDGED".into(),
        }
    }
}

/// The states a verdict can be in (their exit codes are in `exit.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerdictState {
    /// The load ran to its end and every threshold and assertion held.
    Passed,
    /// The load ran to its end; the scenario sets no threshold and no assertion, so nothing
    /// was judged (exit 0, as k6 does, but said as such).
    NoThresholds,
    ThresholdsFailed,
    VerifyFailed,
    ThresholdsAndVerifyFailed,
    /// A threshold with `abort_on_fail` stopped the run.
    Aborted,
    /// SIGINT/SIGTERM stopped the run before the load ended.
    Interrupted,
    /// The generator could not keep its schedule (it released arrivals far behind their
    /// time): its latency figures are not trustworthy. Exit 97.
    ScheduleMissed,
    /// The generator itself failed (a worker panicked, the report could not be written).
    GeneratorFailed,
    /// A server-side fault window could not be applied (the target has no fault API, the
    /// token was refused): the run did not test what it was asked to.
    FaultsFailed,
    /// Set on a report that has not been judged yet.
    NotJudged,
}

impl VerdictState {
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictState::Passed => "passed",
            VerdictState::NoThresholds => "no_thresholds",
            VerdictState::ThresholdsFailed => "thresholds_failed",
            VerdictState::VerifyFailed => "verify_failed",
            VerdictState::ThresholdsAndVerifyFailed => "thresholds_and_verify_failed",
            VerdictState::Aborted => "aborted",
            VerdictState::Interrupted => "interrupted",
            VerdictState::ScheduleMissed => "schedule_missed",
            VerdictState::GeneratorFailed => "generator_failed",
            VerdictState::FaultsFailed => "faults_failed",
            VerdictState::NotJudged => "not_judged",
        }
    }

    /// The states CI may read as a pass.
    pub fn is_pass(self) -> bool {
        matches!(self, VerdictState::Passed | VerdictState::NoThresholds)
    }
}

/// One observability assertion's result (filled by `verify`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AssertionResult {
    pub name: String,
    pub passed: bool,
    pub query: String,
    pub observed: Option<f64>,
    pub expected: Option<String>,
    pub attempts: u32,
    pub message: String,
    /// Not checked: its backend was left out (`TRAFFICGEN_VERIFY_BACKENDS`). Neither passed
    /// nor failed; the verdict counts it apart.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

impl AssertionResult {
    /// Checked and not passed (a skipped assertion did not fail).
    pub fn failed(&self) -> bool {
        !self.passed && !self.skipped
    }
}

/// A fault window as it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    /// Why a server-side window could not be applied (its rule was refused or never set):
    /// the window did not happen, and the run fails (`faults_failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// The whole report (`version` = `VERSION`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    pub version: u32,
    pub run_id: String,
    pub scenario: String,
    pub source: Option<String>,
    pub target_url: String,
    /// RFC 3339.
    pub started_at: String,
    pub ended_at: String,
    /// Seconds of load: the planned duration, or the time actually run when interrupted or
    /// aborted (the drain after the last arrival is not counted). Rates are per second of this,
    /// so the rates of N segments add up exactly.
    pub duration_s: f64,
    pub interrupted: bool,
    pub aborted: Option<String>,
    pub segment: Segment,
    pub totals: OpReport,
    /// Operation name → result, in plan order.
    pub ops: Vec<(String, OpReport)>,
    pub timeline: Vec<TimelinePoint>,
    pub faults: Vec<FaultReport>,
    /// The target's own fault counter over the run, split into header and server-side
    /// faults (when the plan had fault windows and the target exposes the counter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_faults: Option<crate::faults::TargetFaults>,
    pub slowest: Vec<TraceRef>,
    pub failed: Vec<TraceRef>,
    pub faulted: Vec<TraceRef>,
    pub thresholds: Vec<ThresholdResult>,
    pub verify: Vec<AssertionResult>,
    /// `verdict.state` is a pass (`passed` or `no_thresholds`).
    pub passed: bool,
    /// The verdict: state, exit code and the summary's last line.
    #[serde(default)]
    pub verdict: VerdictRecord,
    #[serde(default)]
    pub config: ReportConfig,
    /// `mix.cleanup`: the todos the run created and deleted after the load (not in any
    /// count above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<crate::executor::Cleanup>,
    /// Seconds from the start of the load to its real end, the drain included: what the
    /// rates (`rate` of every operation and of the totals) are divided by. 0 in reports
    /// written before it (their rates are per `duration_s`).
    #[serde(default)]
    pub elapsed_s: f64,
    /// Why the generator could not keep its schedule (its latency figures are then not
    /// trustworthy); `None` when it kept it. A verdict of its own (exit 97) unless the
    /// scenario allows it (`config.allow_schedule_miss`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_missed: Option<String>,
    /// What the control API (next to `--dashboard`) changed during the run, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub control: Vec<ControlEvent>,
}

/// One action taken through the control API: when, what, with which values, by whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ControlEvent {
    /// Seconds since the start of the load.
    pub t_s: f64,
    /// Wall-clock time, RFC 3339.
    pub at: String,
    /// `rate`, `vus`, `pause`, `resume`, `fault_open`, `fault_close` or `annotate`.
    pub action: String,
    /// The action's values (the new rate, the fault window, the annotation's text, ...).
    pub values: serde_json::Map<String, serde_json::Value>,
    /// Who asked: the request's `who` field when given, else the client's address.
    pub who: String,
}

impl Default for Report {
    /// An empty report (for tests and as a base for `..Default::default()`).
    fn default() -> Self {
        Report {
            version: VERSION,
            run_id: String::new(),
            scenario: String::new(),
            source: None,
            target_url: String::new(),
            started_at: String::new(),
            ended_at: String::new(),
            duration_s: 0.0,
            interrupted: false,
            aborted: None,
            segment: Segment::WHOLE,
            totals: OpReport::default(),
            ops: Vec::new(),
            timeline: Vec::new(),
            faults: Vec::new(),
            target_faults: None,
            slowest: Vec::new(),
            failed: Vec::new(),
            faulted: Vec::new(),
            thresholds: Vec::new(),
            verify: Vec::new(),
            passed: false,
            verdict: VerdictRecord::default(),
            config: ReportConfig::default(),
            cleanup: None,
            elapsed_s: 0.0,
            schedule_missed: None,
            control: Vec::new(),
        }
    }
}

impl OpReport {
    /// The HTTP requests this operation sent, as the target counts them: a flow's steps
    /// added up (a flow's own counts are whole flows); another operation's own counts.
    pub fn sent_counts(&self) -> crate::recorder::Counts {
        if self.steps.is_empty() {
            return self.counts.clone();
        }
        let mut c = crate::recorder::Counts::default();
        for (_, s) in &self.steps {
            c.add(&s.counts);
        }
        c
    }
}

impl Report {
    /// `sent_counts` over every operation.
    pub fn sent_totals(&self) -> crate::recorder::Counts {
        let mut c = crate::recorder::Counts::default();
        for (_, op) in &self.ops {
            c.add(&op.sent_counts());
        }
        c
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a trafficgen report: {message}")]
    Format { path: String, message: String },
    #[error("cannot merge: {0}")]
    Merge(String),
    /// The reports are not segments of one run (different plans or run ids): a usage error.
    #[error("cannot merge: {0}")]
    Mismatch(String),
}

/// Accumulates the per-second timeline from the interval snapshots (see `build.rs`).
#[derive(Debug, Default)]
pub struct Timeline {
    pub points: Vec<TimelinePoint>,
    pub(crate) acc: build::TimelineAcc,
}
