//! The validated, resolved plan of a run: stage (2) of the data flow, the ripgrep "HiArgs".
//!
//! A `Plan` holds only valid data with every default applied and every template compiled, so
//! nothing downstream (scheduler, executor, recorder, sinks, verdict) validates again or reads
//! the scenario file. `plan::build` is the only way to make one from a scenario; tests may build
//! one by hand.
//!
//! This module owns the types; `validate.rs` turns a `scenario::Scenario` plus command-line
//! `Overrides` into a `Plan` (or every `PlanError` at once); `template.rs` compiles and renders
//! path/body/header templates; `threshold.rs` parses threshold expressions.

use std::time::Duration;

pub mod compare;
pub mod placeholders;
pub mod quick;
pub mod template;
pub mod threshold;
mod validate;

// Unit enums are the scenario model's own types (one type per concept; see scenario::model).
pub use crate::scenario::model::{Arrivals, FaultVia, Progress, TodoOp, TraceSet};
pub use template::{Escape, Template, Vars};
pub use threshold::{Aggregation, Comparison, Threshold, ThresholdMetric};
pub(crate) use validate::read_bounded;
pub use validate::{
    COMMAND_LINE, Overrides, PlanError, build, build_from_str, build_with_env, defaults, limits,
    parse_base_url,
};

/// Everything a run needs, resolved.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Scenario name: the `scenario` label on every metric and the report's title.
    pub name: String,
    /// The file the plan came from, for messages and the report (None when built in code).
    pub source: Option<std::path::PathBuf>,
    pub target: Target,
    pub load: LoadModel,
    pub mix: Mix,
    pub thresholds: Vec<Threshold>,
    /// Regression rules for `report compare` (scenario `compare:`), kept in the report.
    pub compare: Vec<compare::CompareRule>,
    pub output: Output,
    /// Seed of every random choice (operation pick, Poisson gaps, template randoms).
    pub seed: u64,
    /// Fault windows of the run, in start order (scenario `faults:`).
    pub faults: Vec<FaultWindow>,
    /// Observability assertions run after the load (scenario `verify:`); `None` = none.
    pub verify: Option<Verify>,
    /// Where the generator's own telemetry goes (scenario `telemetry:` + flags).
    pub telemetry: Telemetry,
    /// This process's share of a distributed run (`--segment i/N`); `Segment::WHOLE` otherwise.
    pub segment: Segment,
    /// The end of the load and the schedule's health (scenario `load.drain`,
    /// `load.allow_schedule_miss`).
    pub schedule: ScheduleRules,
}

/// How the load ends and how strictly the schedule is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScheduleRules {
    /// How long after the last arrival (or the first stop) queued and in-flight arrivals may
    /// still take; `None` = the target's `request_timeout`.
    pub drain: Option<Duration>,
    /// A missed schedule is a warning, not a verdict of its own (exit 97).
    pub allow_miss: bool,
}

impl Plan {
    /// The drain bound: `load.drain`, or the target's `request_timeout`.
    pub fn drain(&self) -> Duration {
        self.schedule.drain.unwrap_or(self.target.request_timeout)
    }
}

impl Plan {
    /// A stable hash (FNV-1a, 16 hex digits) of what the run does: the scenario name, target,
    /// load, mix, thresholds, fault timeline, seed and the number of segments. Per-process
    /// fields are left out (the segment index, output paths, telemetry, verify endpoints), so
    /// every segment of one run has the same fingerprint and `report merge` can refuse reports
    /// of different plans. (It hashes the plan's canonical debug text: a trafficgen version
    /// that changes a plan type may change fingerprints, which only refuses merging reports
    /// of two versions.)
    pub fn fingerprint(&self) -> String {
        use std::hash::Hasher as _;
        let t = &self.target;
        let canonical = format!(
            "name={:?}\nbase_url={:?}\nheaders={:?}\ntimeouts={:?},{:?}\nconnections={},{},{:?},{},{},{}\nload={:?}\nmix={:?}\nthresholds={:?}\nfaults={:?}\nseed={}\nsegments={}\n",
            self.name,
            t.base_url,
            t.headers,
            t.connect_timeout,
            t.request_timeout,
            t.max_connections,
            t.max_body,
            t.http_version,
            t.max_streams,
            t.follow_redirects,
            t.cookies,
            self.load,
            self.mix,
            self.thresholds
                .iter()
                .map(|th| &th.source)
                .collect::<Vec<_>>(),
            self.faults,
            self.seed,
            self.segment.count,
        );
        let mut h = fnv::FnvHasher::default();
        h.write(canonical.as_bytes());
        format!("{:016x}", h.finish())
    }
}

/// Share `index` (0-based) of `count` equal shares of the load. Open model: arrival number `k`
/// of the whole schedule belongs to share `k % count`, so the shares add up exactly. Closed
/// model: VU `v` belongs to share `v % count`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Segment {
    pub index: u32,
    pub count: u32,
}

impl Segment {
    pub const WHOLE: Segment = Segment { index: 0, count: 1 };
}

/// One window of the fault timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultWindow {
    /// Offset from the start of the load.
    pub start: Duration,
    pub duration: Duration,
    /// Operations affected (by name); empty = all operations.
    pub ops: Vec<String>,
    /// Server-side rules only: route template (`/api/todos`) and method filters; `None` = any.
    pub route: Option<String>,
    pub method: Option<String>,
    /// Share of matching requests affected, 0 < share <= 1.
    pub share: f64,
    pub kind: FaultKind,
    pub via: FaultVia,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Added delay (+ uniform jitter in [0, jitter]); `span` picks the child span that is
    /// slowed (e.g. `todo_creation`), `None` = the handler as a whole.
    Latency {
        delay: Duration,
        jitter: Duration,
        span: Option<String>,
    },
    /// The request fails with this status (5xx or 4xx).
    Error { status: u16 },
}

/// The todo-api's span names a latency fault may target (`span`, `X-Fault-Span`): its
/// operation spans and the children of `create_todo` (the telemetry contract's span tree). A
/// name outside it would silently slow the handler instead, so plans reject it.
pub const TODO_SPANS: [&str; 8] = [
    "create_todo",
    "list_todos",
    "get_todo",
    "update_todo",
    "delete_todo",
    "validation",
    "todo_creation",
    "metrics_update",
];

/// Assertions checked against the observability stack after the load.
#[derive(Debug, Clone, PartialEq)]
pub struct Verify {
    pub prometheus_url: Option<String>,
    pub loki_url: Option<String>,
    pub tempo_url: Option<String>,
    /// Base URL of Grafana, for ready links to traces in the summary and report.
    pub grafana_url: Option<String>,
    /// Poll each assertion until it passes or this deadline (from the end of the load) passes.
    pub deadline: Duration,
    pub interval: Duration,
    pub assertions: Vec<Assertion>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assertion {
    pub name: String,
    pub kind: AssertionKind,
}

/// Queries may use `${run_id}`, `${scenario}`, `${range}` (from the run's start to the
/// evaluation time, whole seconds rounded up), `${start}` and `${end}` (RFC 3339),
/// `${start_unix}`, `${end_unix}`, `${fault_N_start}`, `${fault_N_end}` (unix seconds, for
/// PromQL's `@`), substituted before sending (see `verify::RunContext::substitute`).
#[derive(Debug, Clone, PartialEq)]
pub enum AssertionKind {
    /// Instant PromQL query evaluated at the end of the run plus `verify::EVAL_DELAY`.
    Promql { query: String, expect: Expect },
    /// The exact change of a PromQL value over the run: evaluated at the end of the run plus
    /// `verify::EVAL_DELAY` minus evaluated just before the start (`verify::BEFORE_START`);
    /// an empty result counts as 0 on either side.
    PromqlDelta { query: String, expect: Expect },
    /// LogQL query over the run's time range.
    Logql { query: String, expect: Expect },
    /// TraceQL search over the run's time range.
    Traceql { query: String, expect: Expect },
    /// The kept trace ids of the given kind exist in Tempo; optionally the named span is the
    /// slowest child of each trace (the span with the largest self time).
    Traces {
        which: TraceSet,
        limit: usize,
        slowest_span: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// At least one series / line / trace.
    NonEmpty,
    /// No result at all.
    Empty,
    /// The (summed) value compared with a number or with the generator's own count.
    Compare {
        comparison: Comparison,
        value: Expected,
        tolerance: Tolerance,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    Number(f64),
    /// A ground-truth count of this run, e.g. `requests{op:create,status:5xx}`,
    /// `errors`, `faults{kind:error}`.
    Ground(GroundRef),
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroundRef {
    pub metric: GroundMetric,
    pub op: Option<String>,
    /// `2xx`..`5xx` or an exact code; requests only.
    pub status: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroundMetric {
    Requests,
    Errors,
    FaultsLatency,
    FaultsError,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tolerance {
    Absolute(f64),
    /// Fraction of the expected value (`1%` → 0.01).
    Relative(f64),
}

/// The generator's own telemetry outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Telemetry {
    /// Serve `/metrics` here (`--metrics-addr`).
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Keep serving `/metrics` this long after the run so the last scrape sees final values.
    pub linger: Duration,
    /// Final push to a Pushgateway (base URL) before exit.
    pub pushgateway: Option<String>,
    /// Final push via Prometheus remote write (full URL of the receiver) before exit.
    pub remote_write: Option<String>,
    /// Share of requests whose client span is exported over OTLP (when
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is set). 0..=1.
    pub trace_sample_ratio: f64,
    /// The `instance` label of pushed and remote-written series (`--instance`; default: the
    /// `TRAFFICGEN_INSTANCE` variable, else the host name).
    pub instance: Option<String>,
}

/// Where requests go and how the connection to it behaves.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port` with no path; `None` starts the bundled todo-api in-process on an
    /// ephemeral loopback port with faults enabled.
    pub base_url: Option<BaseUrl>,
    /// Headers added to every request (after the generator's own `traceparent`), as
    /// templates (constants and `env.` resolved; `seq` and random values per request). A name
    /// given here replaces the generator's header of that name (`Host`, `User-Agent`, ...);
    /// a request's own header replaces one of these.
    pub headers: Vec<(String, Template)>,
    pub connect_timeout: Duration,
    /// Whole-request timeout, measured from the actual send.
    pub request_timeout: Duration,
    /// Poll `path` until it answers 2xx or `timeout` passes (then exit 3).
    pub ready: Readiness,
    /// Upper bound on concurrent connections (open model) — the number of connection tasks.
    pub max_connections: u32,
    /// Response body bytes kept per request for checks and captures; the rest is read,
    /// counted in bytes received and discarded.
    pub max_body: u64,
    /// TLS settings (used when the base URL is `https`).
    pub tls: Tls,
    pub http_version: HttpVersion,
    /// HTTP/2 streams in flight per connection before another connection is opened.
    pub max_streams: u32,
    /// Same-origin redirects followed per request (0: a 3xx is the response).
    pub follow_redirects: u32,
    /// Keep cookies per virtual user / flow arrival.
    pub cookies: bool,
}

/// Which HTTP the executor speaks (the scenario's `target.http_version`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HttpVersion {
    #[default]
    Http11,
    /// HTTP/2; over `http://` with prior knowledge (h2c).
    Http2,
    /// Over TLS: HTTP/2 when the server selects it by ALPN, else HTTP/1.1. Over `http://`: 1.1.
    Auto,
}

/// TLS to an `https://` target (rustls; TLS 1.2 and 1.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// Extra trusted CA certificates (PEM), besides the bundled Mozilla roots.
    pub ca_file: Option<std::path::PathBuf>,
    pub insecure_skip_verify: bool,
    /// Client certificate chain and key (PEM) for mutual TLS.
    pub client_cert: Option<std::path::PathBuf>,
    pub client_key: Option<std::path::PathBuf>,
    /// SNI and the name checked against the certificate; None = the URL's host.
    pub server_name: Option<String>,
}

/// An HTTP/1.1 origin, already split for the hot path (the request line and Host header are
/// pre-serialized from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// "http" or "https".
    pub scheme: String,
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash ("" for none), prepended to every request path.
    pub prefix: String,
}

#[derive(Debug, Clone)]
pub struct Readiness {
    pub path: String,
    pub timeout: Duration,
    pub interval: Duration,
}

/// When requests start.
#[derive(Debug, Clone)]
pub enum LoadModel {
    /// Arrivals at a target rate, independent of how fast the target answers (k6's
    /// ramping-arrival-rate). The rate moves linearly from `start_rate` to each stage's target.
    Open {
        start_rate: f64,
        stages: Vec<RateStage>,
        arrivals: Arrivals,
        /// At most this many requests in flight; an arrival that finds none free waits (and
        /// is counted late) or, past `max_queue`, is dropped.
        max_in_flight: u32,
        max_queue: u32,
    },
    /// A number of virtual users, each looping request → think time (k6's ramping-vus).
    Closed {
        start_vus: u32,
        stages: Vec<VuStage>,
        think_time: ThinkTime,
        /// Optional cap on the total request rate (governor), per second.
        max_rate: Option<f64>,
    },
}

impl LoadModel {
    /// Total planned duration of the load (sum of stage durations).
    pub fn duration(&self) -> Duration {
        match self {
            // Saturating: a plan under validation may hold values beyond the limits.
            LoadModel::Open { stages, .. } => stages
                .iter()
                .fold(Duration::ZERO, |t, s| t.saturating_add(s.duration)),
            LoadModel::Closed { stages, .. } => stages
                .iter()
                .fold(Duration::ZERO, |t, s| t.saturating_add(s.duration)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateStage {
    pub duration: Duration,
    /// Requests per second reached at the end of the stage.
    pub target: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VuStage {
    pub duration: Duration,
    pub target: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThinkTime {
    None,
    Fixed(Duration),
    /// Uniform in [min, max].
    Uniform(Duration, Duration),
}

/// What requests are: weighted operations sharing a bounded pool of created todo ids.
#[derive(Debug, Clone)]
pub struct Mix {
    pub operations: Vec<Operation>,
    /// Capacity of the id pool shared by the built-in todo operations; when full, new ids
    /// replace the oldest.
    pub pool_capacity: usize,
    /// `mix.steady_state`: an id evicted from a full pool is deleted on the target, by the
    /// hidden operation `EVICT_OP` (the last of `operations`, weight 0: never drawn).
    pub steady_state: bool,
    /// `mix.cleanup`: delete the pool's ids at the end, within this bound (None = no cleanup).
    pub cleanup: Option<Duration>,
}

/// Name of the operation that deletes the ids a full pool evicts (`mix.steady_state`).
pub const EVICT_OP: &str = "evict";

impl Mix {
    /// Every step of every flow, in plan order: (index of its operation, step name). A step's
    /// position in this list is its index in the recorder, the snapshot and the report.
    pub fn flow_steps(&self) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (i, o) in self.operations.iter().enumerate() {
            if let OpKind::Flow(steps) = &o.kind {
                out.extend(steps.iter().map(|s| (i, s.name.clone())));
            }
        }
        out
    }

    /// The index of the `evict` operation when `steady_state` is on.
    pub fn evict_op(&self) -> Option<usize> {
        if !self.steady_state {
            return None;
        }
        self.operations
            .iter()
            .rposition(|o| o.weight == 0 && o.name == EVICT_OP)
    }
}

#[derive(Debug, Clone)]
pub struct Operation {
    /// Unique name; the `op` label and the report key.
    pub name: String,
    pub weight: u32,
    pub kind: OpKind,
    pub checks: Vec<Check>,
    /// Overrides `target.follow_redirects` for this operation.
    pub follow_redirects: Option<u32>,
    /// Statuses that are not errors even at 400 and above (inclusive ranges): the scenario's
    /// `expect_status`, else its `checks.status`; empty = the default (below 400).
    pub expect_status: Vec<(u16, u16)>,
}

impl Operation {
    /// Whether `status` (of a request of this operation, or of a flow step with
    /// `step_checks`) is an expected answer rather than an error. A flow step's own status
    /// check decides for that step, unless the operation's `expect_status` was given.
    pub fn expects(&self, step_checks: &[Check], status: u16) -> bool {
        let within =
            |ranges: &[(u16, u16)]| ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&status));
        let step = step_checks.iter().find_map(|c| match c {
            Check::Status(r) => Some(r),
            _ => None,
        });
        match (self.expect_status.is_empty(), step) {
            (true, Some(r)) => within(r),
            (true, None) => status < 400,
            (false, _) => within(&self.expect_status),
        }
    }
}

#[derive(Debug, Clone)]
pub enum OpKind {
    /// A built-in todo CRUD operation against the todo-api's REST API.
    Todo(TodoOp),
    /// One generic request.
    Request(RequestTemplate),
    /// Steps run in order by one arrival; captures from a response feed later steps.
    Flow(Vec<FlowStep>),
}

#[derive(Debug, Clone)]
pub struct RequestTemplate {
    pub method: String,
    /// Path (with query) relative to the base URL, starting with '/'.
    pub path: Template,
    pub headers: Vec<(String, Template)>,
    pub body: Option<Template>,
    /// The path starts with a flow capture (`{{location}}`): the rendered value is a URL
    /// reference the target gave (an absolute path, used as is, or an absolute URL of the
    /// target's own origin); another origin is refused (`cross_origin`).
    pub from_capture: bool,
}

#[derive(Debug, Clone)]
pub struct FlowStep {
    pub name: String,
    pub request: RequestTemplate,
    pub captures: Vec<Capture>,
    pub checks: Vec<Check>,
}

/// Take a value from a response into a flow variable.
#[derive(Debug, Clone)]
pub struct Capture {
    pub var: String,
    pub from: CaptureSource,
}

#[derive(Debug, Clone)]
pub enum CaptureSource {
    /// RFC 6901 JSON pointer into the response body, e.g. `/id`.
    JsonPointer(String),
    Header(String),
}

/// A per-request assertion; a failed check is counted, not an error of the request.
#[derive(Debug, Clone)]
pub enum Check {
    /// The status is one of these (inclusive ranges; `200` is `200..=200`).
    Status(Vec<(u16, u16)>),
    BodyContains(String),
    /// Response time (from the intended start) at most this.
    LatencyBelow(Duration),
}

/// Where results go.
#[derive(Debug, Clone)]
pub struct Output {
    /// JSON report path; `None` writes no file.
    pub report: Option<std::path::PathBuf>,
    pub progress: Progress,
    /// How often worker histograms are merged and the progress line refreshes.
    pub interval: Duration,
    /// How many slowest and failed requests' trace ids the report keeps (each).
    pub keep_traces: usize,
    /// HTML report path (`output.html`, `--html`); `None` writes none.
    pub html: Option<std::path::PathBuf>,
    /// JUnit XML path (`output.junit`, `--junit`); `None` writes none.
    pub junit: Option<std::path::PathBuf>,
    /// Serve the live dashboard here during the run (`--dashboard`); `None` = off.
    pub dashboard: Option<std::net::SocketAddr>,
    /// Required from the dashboard's clients when it listens beyond loopback
    /// (`TRAFFICGEN_DASHBOARD_TOKEN`).
    pub dashboard_token: Option<String>,
}

#[cfg(test)]
mod expect_tests {
    use super::*;

    fn op(expect_status: Vec<(u16, u16)>) -> Operation {
        Operation {
            name: "o".into(),
            weight: 1,
            kind: OpKind::Todo(TodoOp::List),
            checks: Vec::new(),
            follow_redirects: None,
            expect_status,
        }
    }

    #[test]
    fn expected_statuses_decide_what_is_an_error() {
        // Default: below 400.
        assert!(op(vec![]).expects(&[], 302) && !op(vec![]).expects(&[], 404));
        // Explicit ranges, whatever a step checks.
        let o = op(vec![(404, 404), (500, 599)]);
        assert!(o.expects(&[], 404) && o.expects(&[], 503) && !o.expects(&[], 400));
        assert!(o.expects(&[Check::Status(vec![(200, 200)])], 404));
        // Without explicit ranges a flow step's own status check decides for the step.
        assert!(op(vec![]).expects(&[Check::Status(vec![(409, 409)])], 409));
        assert!(!op(vec![]).expects(&[Check::Status(vec![(409, 409)])], 404));
    }
}
