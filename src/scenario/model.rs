//! The raw scenario model: what the YAML file says, field for field, before validation.
//!
//! Every struct denies unknown fields and derives `JsonSchema` (for `trafficgen schema`).
//! Values that semantic checks must point at are `Sp<T>` (value + line/column). Nothing here
//! checks meaning (weights, op names, expressions): that is `plan::build`'s job. The format
//! reference is scenarios/README.md.

use schemars::JsonSchema;
use serde::Deserialize;

pub use super::forms::{
    Entries, StatusList, ThinkTimeSpec, ThresholdEntry, ThresholdList, ToleranceSpec,
};
use super::units::{Duration, Rate, Share, Sp};

/// A whole scenario file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "trafficgen scenario")]
pub struct Scenario {
    /// Scenario name: the `scenario` label on every metric and the report's title.
    pub name: Sp<String>,
    /// Free text for people reading the file.
    pub description: Option<String>,
    /// Seed of every random choice; random (and printed in the report) when absent.
    pub seed: Option<u64>,
    /// Where requests go. Without `target.url` the bundled todo-api runs in-process.
    pub target: Option<TargetSpec>,
    /// Constants usable in templates as `{{name}}`.
    pub vars: Option<Entries<Sp<String>>>,
    /// When requests start: open (arrival rate) or closed (virtual users) model.
    pub load: Sp<LoadSpec>,
    /// What requests are: weighted operations.
    pub mix: Sp<MixSpec>,
    /// Pass/fail conditions: `metric{op:NAME}: [expression, ...]`.
    pub thresholds: Option<Entries<Sp<ThresholdList>>>,
    /// Fault windows applied during the load.
    pub faults: Option<Vec<Sp<FaultSpec>>>,
    /// Observability assertions checked after the load.
    pub verify: Option<Sp<VerifySpec>>,
    /// The generator's own metrics and traces.
    pub telemetry: Option<TelemetrySpec>,
    /// Report file, progress output, snapshot interval.
    pub output: Option<OutputSpec>,
    /// Regression rules of `trafficgen report compare` against a baseline run:
    /// `metric{op:NAME}: "p(95) < baseline * 1.10"` (one expression or a list).
    pub compare: Option<Entries<Sp<ThresholdList>>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// `http://host[:port][/prefix]` or `https://…` (IPv6 literals in brackets:
    /// `http://[::1]:8080`); absent = start the bundled todo-api on 127.0.0.1:0.
    pub url: Option<Sp<String>>,
    /// Headers sent with every request. Values are templates (`Bearer {{env.TOKEN}}`). A name
    /// given here replaces the generator's own header (`Host`, `User-Agent`, ...);
    /// `Content-Length` and `Transfer-Encoding` are computed and cannot be set.
    pub headers: Option<Entries<Sp<String>>>,
    /// Default `2s`.
    pub connect_timeout: Option<Sp<Duration>>,
    /// Whole-request timeout from the actual send. Default `10s`.
    pub request_timeout: Option<Sp<Duration>>,
    /// Concurrent connections (open model). Default 50.
    #[schemars(range(min = 1, max = super::limits::MAX_CONNECTIONS))]
    pub max_connections: Option<Sp<u32>>,
    /// Response body bytes kept per request for checks and captures; the rest is read,
    /// counted and discarded. Default 1048576 (1 MiB).
    #[schemars(range(max = super::limits::MAX_BODY))]
    pub max_body: Option<Sp<u64>>,
    /// TLS settings of an `https://` target.
    pub tls: Option<TlsSpec>,
    /// `"1.1"` (default), `"2"` (HTTP/2; over `http://` with prior knowledge, h2c) or
    /// `"auto"` (HTTP/2 when the server offers it in the TLS handshake, else 1.1).
    pub http_version: Option<Sp<HttpVersionName>>,
    /// HTTP/2: concurrent streams per connection before another connection is opened.
    /// Default 100.
    #[schemars(range(min = 1, max = super::limits::MAX_STREAMS))]
    pub max_streams: Option<Sp<u32>>,
    /// Redirects followed per request (3xx with a same-origin `Location`); each hop is a
    /// request of its own in the counts. Default 0: a 3xx is the response.
    #[schemars(range(max = super::limits::MAX_REDIRECTS))]
    pub follow_redirects: Option<Sp<u32>>,
    /// A cookie jar per virtual user (closed model) or per arrival of a flow (open model):
    /// `Set-Cookie` values are sent back in `Cookie`. Default false.
    pub cookies: Option<Sp<bool>>,
    /// Readiness wait before the load starts.
    pub ready: Option<ReadySpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum HttpVersionName {
    #[serde(rename = "1.1")]
    Http11,
    #[serde(rename = "2")]
    Http2,
    #[serde(rename = "auto")]
    Auto,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// PEM file of CA certificates trusted besides the bundled Mozilla roots.
    pub ca_file: Option<Sp<String>>,
    /// Accept any server certificate (a warning is printed). Default false.
    pub insecure_skip_verify: Option<Sp<bool>>,
    /// PEM client certificate chain for mutual TLS (with `client_key`).
    pub client_cert: Option<Sp<String>>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<Sp<String>>,
    /// Name sent as SNI and checked against the certificate; default the URL's host.
    pub server_name: Option<Sp<String>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadySpec {
    /// Polled until it answers 2xx. Default `/health`.
    pub path: Option<Sp<String>>,
    /// Give up (exit 3) after this long. Default `30s`.
    pub timeout: Option<Sp<Duration>>,
    /// Default `100ms`.
    pub interval: Option<Sp<Duration>>,
}

// `ModelName` and `FaultKindName` are only the tags of `plan::LoadModel` and `plan::FaultKind`,
// whose variants carry the resolved data (stages, delays, statuses) that the file spreads over
// several fields: two types on purpose. The unit enums below are shared with the plan as they
// are (`plan` re-exports them), so there is one type per concept.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelName {
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Arrivals {
    /// Evenly spaced at 1/rate.
    Constant,
    /// Exponential gaps (seeded), for bursty but on-average-exact load.
    Poisson,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// `open` (stages give `rate`) or `closed` (stages give `vus`); inferred from the stages
    /// when absent.
    pub model: Option<Sp<ModelName>>,
    /// Open model: stages of `{duration, rate}`; closed model: stages of `{duration, vus}`.
    /// Each stage moves linearly from the previous target to its own.
    pub stages: Sp<Vec<Sp<StageSpec>>>,
    /// Open model: rate at time 0. Default: the first stage's rate, so a single stage is a
    /// constant rate; write `start_rate: 0` to ramp up from nothing.
    pub start_rate: Option<Sp<Rate>>,
    /// Open model: `constant` (default) or `poisson` arrivals.
    pub arrivals: Option<Sp<Arrivals>>,
    /// Open model: most requests in flight. Default `target.max_connections`.
    #[schemars(range(min = 1, max = super::limits::MAX_CONNECTIONS))]
    pub max_in_flight: Option<Sp<u32>>,
    /// Open model: arrivals that may wait for a free connection; beyond it they are dropped.
    /// Default 10000 (the wait shows in response time, measured from the intended start).
    #[schemars(range(max = super::limits::MAX_QUEUE))]
    pub max_queue: Option<Sp<u32>>,
    /// Closed model: VUs at time 0. Default: the first stage's `vus`.
    #[schemars(range(max = super::limits::MAX_VUS))]
    pub start_vus: Option<Sp<u32>>,
    /// Closed model: pause after each request: `1s`, or `{min: 500ms, max: 2s}`.
    pub think_time: Option<Sp<ThinkTimeSpec>>,
    /// Closed model: cap on the total request rate.
    pub max_rate: Option<Sp<Rate>>,
    /// After the last arrival (or the first stop signal), how long arrivals still queued or in
    /// flight may take before they are abandoned (counted as such). Default: the target's
    /// `request_timeout`.
    pub drain: Option<Sp<Duration>>,
    /// `true`: a generator that could not keep its schedule (dispatcher late, arrivals
    /// released far behind their time) is only a warning, not exit 97. Default `false`.
    pub allow_schedule_miss: Option<Sp<bool>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub duration: Sp<Duration>,
    /// Open model: requests per second reached at the end of the stage.
    pub rate: Option<Sp<Rate>>,
    /// Closed model: virtual users reached at the end of the stage.
    #[schemars(range(max = super::limits::MAX_VUS))]
    pub vus: Option<Sp<u32>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MixSpec {
    /// Capacity of the pool of created todo ids. Default 1000.
    #[schemars(range(min = 1, max = super::limits::MAX_POOL))]
    pub pool_capacity: Option<Sp<u32>>,
    pub operations: Sp<Vec<Sp<OperationSpec>>>,
    /// Keep the target's data bounded in a run of any length: an id that a full pool evicts
    /// is deleted on the target (`DELETE /api/todos/{id}`, counted as operation `evict`), so
    /// the run never holds more than `pool_capacity` todos of its own. Default false.
    pub steady_state: Option<Sp<bool>>,
    /// At the end of the load, delete every todo the run created and still knows of (its id
    /// pool), counted apart from the load (the report's `cleanup`). Default false.
    pub cleanup: Option<Sp<bool>>,
    /// Bound on the whole cleanup; what is not deleted by then is reported as left. Default 30s.
    pub cleanup_timeout: Option<Sp<Duration>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TodoOp {
    /// POST /api/todos; the new id joins the pool.
    Create,
    /// GET /api/todos (with `limit`).
    List,
    /// GET /api/todos/{id} from the pool.
    Get,
    /// PUT /api/todos/{id} with new text.
    Update,
    /// PATCH /api/todos/{id} flipping `completed`.
    Toggle,
    /// DELETE /api/todos/{id}; the id leaves the pool.
    Delete,
}

impl TodoOp {
    pub fn as_str(self) -> &'static str {
        match self {
            TodoOp::Create => "create",
            TodoOp::List => "list",
            TodoOp::Get => "get",
            TodoOp::Update => "update",
            TodoOp::Toggle => "toggle",
            TodoOp::Delete => "delete",
        }
    }
}

/// One weighted operation: exactly one of `todo`, `request`, `flow`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperationSpec {
    /// Unique name (the `op` label). Default for `todo` operations: the todo operation's name.
    pub name: Option<Sp<String>>,
    /// Relative weight in the mix. Default 1.
    #[schemars(range(min = 1, max = super::limits::MAX_WEIGHT))]
    pub weight: Option<Sp<u32>>,
    /// A built-in todo-api operation.
    pub todo: Option<Sp<TodoOp>>,
    /// One generic request.
    pub request: Option<Sp<RequestSpec>>,
    /// Steps run in order; captures feed later steps.
    pub flow: Option<Sp<Vec<Sp<FlowStepSpec>>>>,
    pub checks: Option<ChecksSpec>,
    /// Redirects (3xx with a same-origin `Location`) followed; default `target.follow_redirects`.
    #[schemars(range(max = super::limits::MAX_REDIRECTS))]
    pub follow_redirects: Option<Sp<u32>>,
    /// Statuses that are the expected answer, not errors (k6's `expected_response`): `404`,
    /// `"4xx"`, `"200-299"` or a list. Default: the statuses of `checks.status` when there is
    /// one, else every status below 400. A 4xx/5xx outside the list counts as an error.
    pub expect_status: Option<Sp<StatusList>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// Default `GET`.
    pub method: Option<Sp<String>>,
    /// Path and query relative to the target URL, starting with `/`; a template.
    pub path: Sp<String>,
    /// Header values are templates.
    pub headers: Option<Entries<Sp<String>>>,
    /// Request body; a template.
    pub body: Option<Sp<String>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowStepSpec {
    pub name: Sp<String>,
    pub request: Sp<RequestSpec>,
    /// `var: /json/pointer` or `var: "header:Name"`.
    pub capture: Option<Entries<Sp<String>>>,
    pub checks: Option<ChecksSpec>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecksSpec {
    /// Accepted statuses: `200`, `"2xx"`, `"200-299"` or a list of them.
    pub status: Option<Sp<StatusList>>,
    /// The body contains this text.
    pub body_contains: Option<Sp<String>>,
    /// Response time (from the intended start) at most this.
    pub latency_below: Option<Sp<Duration>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultKindName {
    Latency,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultVia {
    /// `X-Fault-Delay` / `X-Fault-Status` / `X-Fault-Span` on the chosen requests: the
    /// generator knows exactly which requests were faulted.
    Header,
    /// A time-boxed rule set through the todo-api's `/admin/faults` API (bearer token from the
    /// environment variable `token_env`, default `TRAFFICGEN_FAULT_TOKEN`; set automatically
    /// for the embedded todo-api): affects all traffic, like a real incident.
    Server,
}

/// One fault window.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Offset from the start of the load.
    pub start: Sp<Duration>,
    pub duration: Sp<Duration>,
    /// `latency` (needs `delay`) or `error` (needs `status`).
    pub kind: Sp<FaultKindName>,
    pub delay: Option<Sp<Duration>>,
    /// Uniform extra delay in [0, jitter]. Default `0`.
    pub jitter: Option<Sp<Duration>>,
    /// Child span that gets the delay, e.g. `todo_creation`.
    pub span: Option<Sp<String>>,
    /// Status returned by `error` faults (400..=599).
    #[schemars(range(min = 400, max = 599))]
    pub status: Option<Sp<u16>>,
    /// Operations affected (header faults); default all.
    pub ops: Option<Vec<Sp<String>>>,
    /// Server faults: route template filter, e.g. `/api/todos`.
    pub route: Option<Sp<String>>,
    /// Server faults: method filter, e.g. `POST`.
    pub method: Option<Sp<String>>,
    /// Share of matching requests affected. Default `100%`.
    pub share: Option<Sp<Share>>,
    /// `header` (default; per-request fault headers) or `server` (the todo-api's fault API).
    pub via: Option<Sp<FaultVia>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifySpec {
    pub prometheus_url: Option<Sp<String>>,
    pub loki_url: Option<Sp<String>>,
    pub tempo_url: Option<Sp<String>>,
    /// For trace links in the summary and report.
    pub grafana_url: Option<Sp<String>>,
    /// Poll each assertion until it passes or this long after the load. Default `60s`.
    pub deadline: Option<Sp<Duration>>,
    /// Default `2s`.
    pub interval: Option<Sp<Duration>>,
    pub assertions: Sp<Vec<Sp<AssertionSpec>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TraceSet {
    Slowest,
    Failed,
    Faulted,
}

/// One assertion: exactly one of `promql`, `promql_delta`, `logql`, `traceql`, `traces`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertionSpec {
    /// Shown in the summary and report. Default: the query.
    pub name: Option<Sp<String>>,
    pub promql: Option<Sp<String>>,
    /// PromQL whose exact change over the run is compared: its value at the end of the run
    /// minus its value just before the start (a series absent then counts as 0), with no
    /// `increase()` extrapolation.
    pub promql_delta: Option<Sp<String>>,
    pub logql: Option<Sp<String>>,
    pub traceql: Option<Sp<String>>,
    /// The kept trace ids of this kind exist in Tempo.
    pub traces: Option<Sp<TraceSet>>,
    /// `traces`: how many ids to look up. Default 5.
    #[schemars(range(min = 1, max = super::limits::MAX_TRACE_LOOKUPS))]
    pub limit: Option<Sp<u32>>,
    /// `traces`: this span must be the slowest child of each trace.
    pub slowest_span: Option<Sp<String>>,
    /// `non_empty` (default), `empty`, or `<cmp> <number | ground-truth ref>`, e.g.
    /// `== requests{op:create,status:5xx}`.
    pub expect: Option<Sp<String>>,
    /// Allowed difference for comparisons: `1%` (of the expected value) or a number. Default 0.
    pub tolerance: Option<Sp<ToleranceSpec>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySpec {
    /// Serve `/metrics` here, e.g. `127.0.0.1:9464`.
    pub metrics_addr: Option<Sp<String>>,
    /// Keep `/metrics` up this long after the run. Default `0`.
    pub linger: Option<Sp<Duration>>,
    /// Pushgateway base URL for a final push.
    pub pushgateway: Option<Sp<String>>,
    /// Prometheus remote-write URL for a final push.
    pub remote_write: Option<Sp<String>>,
    /// Share of requests whose client span is exported over OTLP. Default 0.1.
    pub trace_sample_ratio: Option<Sp<Share>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// A bar on a TTY, plain periodic lines otherwise.
    Auto,
    /// Plain lines only.
    Plain,
    /// Nothing until the summary.
    Quiet,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// JSON report path.
    pub report: Option<Sp<String>>,
    /// `auto` (default), `plain` or `quiet`.
    pub progress: Option<Sp<Progress>>,
    /// Snapshot and progress interval. Default `1s`.
    pub interval: Option<Sp<Duration>>,
    /// Slowest and failed trace ids kept (each). Default 10.
    #[schemars(range(max = super::limits::MAX_KEEP_TRACES))]
    pub keep_traces: Option<Sp<u32>>,
    /// Self-contained HTML report path (charts over time, tables, trace links).
    pub html: Option<Sp<String>>,
    /// JUnit XML path: one test case per threshold, check and assertion.
    pub junit: Option<Sp<String>>,
}
