//! The raw scenario model: what the YAML file says, field for field, before validation.
//!
//! Every struct denies unknown fields and derives `JsonSchema` (for `trafficgen schema`).
//! Values that semantic checks must point at are `Sp<T>` (value + line/column). Nothing here
//! checks meaning (weights, op names, expressions): that is `plan::build`'s job. The format
//! reference is scenarios/README.md.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Visitor};
use serde::Deserialize;

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
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// `http://host:port[/prefix]`; absent = start the bundled todo-api on 127.0.0.1:0.
    pub url: Option<Sp<String>>,
    /// Headers sent with every request.
    pub headers: Option<Entries<Sp<String>>>,
    /// Default `2s`.
    pub connect_timeout: Option<Sp<Duration>>,
    /// Whole-request timeout from the actual send. Default `10s`.
    pub request_timeout: Option<Sp<Duration>>,
    /// Concurrent connections (open model). Default 50.
    pub max_connections: Option<Sp<u32>>,
    /// Readiness wait before the load starts.
    pub ready: Option<ReadySpec>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelName {
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArrivalsName {
    Constant,
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
    pub arrivals: Option<Sp<ArrivalsName>>,
    /// Open model: most requests in flight. Default `target.max_connections`.
    pub max_in_flight: Option<Sp<u32>>,
    /// Open model: arrivals that may wait for a free connection; beyond it they are dropped.
    /// Default 10000 (the wait shows in response time, measured from the intended start).
    pub max_queue: Option<Sp<u32>>,
    /// Closed model: VUs at time 0. Default: the first stage's `vus`.
    pub start_vus: Option<Sp<u32>>,
    /// Closed model: pause after each request: `1s`, or `{min: 500ms, max: 2s}`.
    pub think_time: Option<Sp<ThinkTimeSpec>>,
    /// Closed model: cap on the total request rate.
    pub max_rate: Option<Sp<Rate>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub duration: Sp<Duration>,
    /// Open model: requests per second reached at the end of the stage.
    pub rate: Option<Sp<Rate>>,
    /// Closed model: virtual users reached at the end of the stage.
    pub vus: Option<Sp<u32>>,
}

/// `1s` (fixed) or `{min: 500ms, max: 2s}` (uniform).
#[derive(Debug, Clone, PartialEq)]
pub enum ThinkTimeSpec {
    Fixed(Duration),
    Uniform { min: Duration, max: Duration },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UniformThink {
    min: Duration,
    max: Duration,
}

impl<'de> Deserialize<'de> for ThinkTimeSpec {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ThinkTimeSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration or `{min: <duration>, max: <duration>}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ThinkTimeSpec, E> {
                v.parse().map(ThinkTimeSpec::Fixed).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ThinkTimeSpec, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<ThinkTimeSpec, A::Error> {
                let u = UniformThink::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ThinkTimeSpec::Uniform { min: u.min, max: u.max })
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for ThinkTimeSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ThinkTime".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let d = g.subschema_for::<Duration>();
        schemars::json_schema!({
            "description": "A fixed pause (`1s`) or a uniform one (`{min: 500ms, max: 2s}`).",
            "anyOf": [
                d,
                { "type": "object", "additionalProperties": false, "required": ["min", "max"],
                  "properties": { "min": d, "max": d } }
            ]
        })
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MixSpec {
    /// Capacity of the pool of created todo ids. Default 1000.
    pub pool_capacity: Option<Sp<u32>>,
    pub operations: Sp<Vec<Sp<OperationSpec>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TodoOpName {
    Create,
    List,
    Get,
    Update,
    Toggle,
    Delete,
}

impl TodoOpName {
    pub fn as_str(self) -> &'static str {
        match self {
            TodoOpName::Create => "create",
            TodoOpName::List => "list",
            TodoOpName::Get => "get",
            TodoOpName::Update => "update",
            TodoOpName::Toggle => "toggle",
            TodoOpName::Delete => "delete",
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
    pub weight: Option<Sp<u32>>,
    /// A built-in todo-api operation.
    pub todo: Option<Sp<TodoOpName>>,
    /// One generic request.
    pub request: Option<Sp<RequestSpec>>,
    /// Steps run in order; captures feed later steps.
    pub flow: Option<Sp<Vec<Sp<FlowStepSpec>>>>,
    pub checks: Option<ChecksSpec>,
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

/// Inclusive status ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusList(pub Vec<(u16, u16)>);

fn parse_status(s: &str) -> Result<(u16, u16), String> {
    let t = s.trim();
    let bad = || format!("`{s}` is not a status (examples: `200`, `2xx`, `200-299`)");
    let code = |c: &str| match c.trim().parse::<u16>() {
        Ok(n) if (100..=599).contains(&n) => Ok(n),
        _ => Err(bad()),
    };
    if let Some(class) = t.strip_suffix("xx").or_else(|| t.strip_suffix("XX")) {
        return match class {
            "1" | "2" | "3" | "4" | "5" => {
                let c: u16 = class.parse().map_err(|_| bad())?;
                Ok((c * 100, c * 100 + 99))
            }
            _ => Err(bad()),
        };
    }
    match t.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (code(a)?, code(b)?);
            if a > b { Err(bad()) } else { Ok((a, b)) }
        }
        None => code(t).map(|c| (c, c)),
    }
}

impl<'de> Deserialize<'de> for StatusList {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StatusList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a status (`200`, `2xx`, `200-299`) or a list of them")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StatusList, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StatusList, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StatusList, E> {
                parse_status(v).map(|r| StatusList(vec![r])).map_err(E::custom)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<StatusList, A::Error> {
                let mut out = Vec::new();
                while let Some(one) = seq.next_element::<StatusList>()? {
                    out.extend(one.0);
                }
                Ok(StatusList(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for StatusList {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StatusList".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let one = serde_json::json!({ "anyOf": [
            { "type": "integer", "minimum": 100, "maximum": 599 },
            { "type": "string", "pattern": "^([1-5]xx|[1-5][0-9][0-9](-[1-5][0-9][0-9])?)$" }
        ]});
        schemars::json_schema!({
            "description": "A status (`200`, `2xx`, `200-299`) or a list of them.",
            "anyOf": [one, { "type": "array", "items": one }]
        })
    }
}

/// The expressions of one threshold key: one string, or a list of strings and
/// `{threshold, abort_on_fail, delay_abort_eval}` mappings.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdList(pub Vec<Sp<ThresholdEntry>>);

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdEntry {
    /// `<aggregation> <comparison> <value>[unit] [over <window>]`, e.g. `p(95)<300ms`.
    pub threshold: String,
    /// Stop the run as soon as this threshold fails.
    #[serde(default)]
    pub abort_on_fail: bool,
    /// Do not abort before this much of the run has passed. Default `0`.
    pub delay_abort_eval: Option<Duration>,
}

struct EntryVisitor;
impl<'de> Visitor<'de> for EntryVisitor {
    type Value = ThresholdEntry;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a threshold expression or `{threshold: ..., abort_on_fail: true}`")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<ThresholdEntry, E> {
        Ok(ThresholdEntry { threshold: v.to_string(), abort_on_fail: false, delay_abort_eval: None })
    }
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<ThresholdEntry, A::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            threshold: String,
            #[serde(default)]
            abort_on_fail: bool,
            delay_abort_eval: Option<Duration>,
        }
        let l = Long::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(ThresholdEntry {
            threshold: l.threshold,
            abort_on_fail: l.abort_on_fail,
            delay_abort_eval: l.delay_abort_eval,
        })
    }
}

/// One list element: either form of an entry.
struct EntryItem(ThresholdEntry);
impl<'de> Deserialize<'de> for EntryItem {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EntryVisitor).map(EntryItem)
    }
}

impl<'de> Deserialize<'de> for ThresholdList {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ThresholdList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a threshold expression or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ThresholdList, E> {
                EntryVisitor.visit_str(v).map(|e| ThresholdList(vec![Sp::new(e)]))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<ThresholdList, A::Error> {
                EntryVisitor.visit_map(map).map(|e| ThresholdList(vec![Sp::new(e)]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<ThresholdList, A::Error> {
                let mut out = Vec::new();
                while let Some(e) = seq.next_element::<Sp<EntryItem>>()? {
                    out.push(Sp { value: e.value.0, line: e.line, column: e.column });
                }
                Ok(ThresholdList(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for ThresholdList {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ThresholdList".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let long = g.subschema_for::<ThresholdEntry>();
        let one = serde_json::json!({ "anyOf": [{ "type": "string" }, long] });
        schemars::json_schema!({
            "description": "Threshold expressions (see scenarios/README.md for the grammar).",
            "anyOf": [one, { "type": "array", "items": one }]
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultKindName {
    Latency,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultViaName {
    Header,
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
    pub via: Option<Sp<FaultViaName>>,
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
pub enum TraceSetName {
    Slowest,
    Failed,
    Faulted,
}

/// One assertion: exactly one of `promql`, `logql`, `traceql`, `traces`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertionSpec {
    /// Shown in the summary and report. Default: the query.
    pub name: Option<Sp<String>>,
    pub promql: Option<Sp<String>>,
    pub logql: Option<Sp<String>>,
    pub traceql: Option<Sp<String>>,
    /// The kept trace ids of this kind exist in Tempo.
    pub traces: Option<Sp<TraceSetName>>,
    /// `traces`: how many ids to look up. Default 5.
    pub limit: Option<Sp<u32>>,
    /// `traces`: this span must be the slowest child of each trace.
    pub slowest_span: Option<Sp<String>>,
    /// `non_empty` (default), `empty`, or `<cmp> <number | ground-truth ref>`, e.g.
    /// `== requests{op:create,status:5xx}`.
    pub expect: Option<Sp<String>>,
    /// Allowed difference for comparisons: `1%` (of the expected value) or a number. Default 0.
    pub tolerance: Option<Sp<ToleranceSpec>>,
}

/// `1%` (relative) or a number (absolute).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ToleranceSpec {
    Absolute(f64),
    Relative(f64),
}

impl<'de> Deserialize<'de> for ToleranceSpec {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ToleranceSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a tolerance: `1%` or a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ToleranceSpec, E> {
                Ok(ToleranceSpec::Absolute(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ToleranceSpec, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ToleranceSpec, E> {
                if v >= 0.0 {
                    Ok(ToleranceSpec::Absolute(v))
                } else {
                    Err(E::custom("a tolerance cannot be negative"))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ToleranceSpec, E> {
                match v.trim().strip_suffix('%') {
                    Some(p) => match p.trim().parse::<f64>() {
                        Ok(p) if p >= 0.0 => Ok(ToleranceSpec::Relative(p / 100.0)),
                        _ => Err(E::custom(format!("`{v}` is not a tolerance (`1%` or a number)"))),
                    },
                    None => match v.trim().parse::<f64>() {
                        Ok(n) => self.visit_f64(n),
                        Err(_) => Err(E::custom(format!("`{v}` is not a tolerance (`1%` or a number)"))),
                    },
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for ToleranceSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Tolerance".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`1%` (relative to the expected value) or an absolute number.",
            "anyOf": [
                { "type": "number", "minimum": 0 },
                { "type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?%$" }
            ]
        })
    }
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
pub enum ProgressName {
    Auto,
    Plain,
    Quiet,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// JSON report path.
    pub report: Option<Sp<String>>,
    /// `auto` (default), `plain` or `quiet`.
    pub progress: Option<Sp<ProgressName>>,
    /// Snapshot and progress interval. Default `1s`.
    pub interval: Option<Sp<Duration>>,
    /// Slowest and failed trace ids kept (each). Default 10.
    pub keep_traces: Option<Sp<u32>>,
}

/// A mapping that keeps the file's order (headers, vars, thresholds, captures).
#[derive(Debug, Clone, PartialEq)]
pub struct Entries<V>(pub Vec<(Sp<String>, V)>);

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Vis<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Entries<V>, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<Sp<String>>()? {
                    out.push((k, map.next_value()?));
                }
                Ok(Entries(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Entries<V>, E> {
                Ok(Entries(Vec::new()))
            }
        }
        d.deserialize_map(Vis(std::marker::PhantomData))
    }
}

impl<V: JsonSchema> JsonSchema for Entries<V> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let v = g.subschema_for::<V>();
        schemars::json_schema!({ "type": "object", "additionalProperties": v })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(parse_status("200"), Ok((200, 200)));
        assert_eq!(parse_status("2xx"), Ok((200, 299)));
        assert_eq!(parse_status("200-204"), Ok((200, 204)));
        assert!(parse_status("700").is_err());
        assert!(parse_status("204-200").is_err());
        assert!(parse_status("6xx").is_err());
    }
}
