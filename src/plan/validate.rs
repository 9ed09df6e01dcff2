//! Scenario + command-line overrides → `Plan`, reporting every problem at once.
//!
//! (OWNER: scenario/plan helper. The signatures of `Overrides`, `PlanError` and `build`
//! are the contract the engine side codes against; extend, don't break.)
//!
//! `build` reads the file, deserializes it (`scenario::parse`, which already collects every
//! structural problem), then checks meaning section by section, each check adding to one list
//! of located `PlanError`s sorted by position. Sections: this file (target, load, output,
//! telemetry, overrides), `mix.rs` (operations, checks, templates), `observe.rs` (thresholds,
//! faults, verify).

mod mix;
mod observe;

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    Arrivals, BaseUrl, LoadModel, Output, Plan, Progress, RateStage, Readiness, Segment, Target,
    Telemetry, ThinkTime, VuStage,
};
use crate::scenario::model::{self, ArrivalsName, ModelName, ProgressName, ThinkTimeSpec};
use crate::scenario::Sp;

/// Command-line (and environment) values that replace the scenario's.
///
/// Precedence, highest first: **command-line flag > environment variable (`TRAFFICGEN_<FLAG>`)
/// > scenario file > built-in default**. clap resolves the first two into this struct (a flag
/// wins over its environment variable); `build` applies whatever is set here over the
/// scenario, and the scenario over the defaults. `duration` scales every stage by the same
/// factor (ramps keep their shape); `rate` replaces an open model's stages with one constant
/// stage, `vus` a closed model's with one constant VU stage (both over the scenario's, or the
/// overridden, total duration). `grafana_url` creates an empty `verify` when the scenario has
/// none, so trace links still work.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub target_url: Option<String>,
    /// Open model: replaces the stages with one constant-rate stage.
    pub rate: Option<f64>,
    /// Replaces the total duration (stages are scaled proportionally).
    pub duration: Option<Duration>,
    /// Closed model: replaces the stages with a constant number of VUs.
    pub vus: Option<u32>,
    pub report: Option<PathBuf>,
    pub progress: Option<Progress>,
    pub seed: Option<u64>,
    pub segment: Option<super::Segment>,
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub linger: Option<Duration>,
    pub pushgateway: Option<String>,
    pub remote_write: Option<String>,
    pub grafana_url: Option<String>,
}

/// One problem in a scenario, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {field}: {message}")]
pub struct PlanError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Dotted field path, e.g. `load.stages[1].target`.
    pub field: String,
    pub message: String,
}

/// Built-in defaults (documented in scenarios/README.md).
pub mod defaults {
    use std::time::Duration;
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    pub const READY_PATH: &str = "/health";
    pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
    pub const READY_INTERVAL: Duration = Duration::from_millis(100);
    pub const MAX_CONNECTIONS: u32 = 50;
    pub const INTERVAL: Duration = Duration::from_secs(1);
    pub const KEEP_TRACES: usize = 10;
    pub const POOL_CAPACITY: usize = 1000;
    /// Arrivals that find every connection busy wait (counted late) up to this many; beyond it
    /// they are dropped. Waiting hides nothing: latency is measured from the intended start, so
    /// the wait shows in response time and lag. Dropping at once (0) would turn a stall of a
    /// few milliseconds (connections ÷ rate = 2.5 ms at 20 000/s) into lost arrivals.
    pub const MAX_QUEUE: u32 = 10_000;
    pub const TRACE_SAMPLE_RATIO: f64 = 0.1;
    pub const LINGER: Duration = Duration::ZERO;
    pub const VERIFY_DEADLINE: Duration = Duration::from_secs(60);
    pub const VERIFY_INTERVAL: Duration = Duration::from_secs(2);
    pub const TRACES_LIMIT: usize = 5;
}

/// The file name used for problems in command-line values.
pub const COMMAND_LINE: &str = "<command line>";

/// Reads, parses and validates the scenario at `path`.
pub fn build(path: &Path, overrides: &Overrides) -> Result<Plan, Vec<PlanError>> {
    build_with_env(path, overrides, &|name| std::env::var(name).ok())
}

/// `build` with an explicit environment lookup (for `{{env.NAME}}` templates), for tests.
pub fn build_with_env(
    path: &Path,
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, Vec<PlanError>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![PlanError { file: file.clone(), line: 0, column: 0, field: String::new(), message: format!("cannot read the scenario: {e}") }]
    })?;
    build_from_str(&text, &file, Some(path.to_path_buf()), overrides, env)
}

/// Validates scenario `text` (named `file` in messages).
pub fn build_from_str(
    text: &str,
    file: &str,
    source: Option<PathBuf>,
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, Vec<PlanError>> {
    let (scenario, problems) = crate::scenario::parse(text);
    let mut errs = Errors { file: file.to_string(), list: Vec::new(), structural: Vec::new() };
    for p in problems {
        errs.structural.push(p.path.clone());
        errs.at_pos(p.line, p.column, p.path, p.message);
    }
    let plan = scenario.map(|s| check(s, source, overrides, env, &mut errs));
    errs.list.sort_by(|a, b| (a.file != *file, a.line, a.column).cmp(&(b.file != *file, b.line, b.column)));
    errs.list.dedup();
    match plan {
        Some(plan) if errs.list.is_empty() => Ok(plan),
        _ => Err(errs.list),
    }
}

/// Problems found so far.
pub(super) struct Errors {
    file: String,
    list: Vec<PlanError>,
    /// Field paths whose nodes were dropped by the structural pass; checks that look across
    /// sections skip them rather than report consequences.
    structural: Vec<String>,
}

impl Errors {
    fn at_pos(&mut self, line: u32, column: u32, field: impl Into<String>, message: impl Into<String>) {
        self.list.push(PlanError {
            file: self.file.clone(),
            line: line as usize,
            column: column as usize,
            field: field.into(),
            message: message.into(),
        });
    }

    pub(super) fn at<T>(&mut self, sp: &Sp<T>, field: impl Into<String>, message: impl Into<String>) {
        self.at_pos(sp.line, sp.column, field, message);
    }

    fn flag(&mut self, flag: &str, message: impl Into<String>) {
        self.list.push(PlanError {
            file: COMMAND_LINE.into(),
            line: 0,
            column: 0,
            field: flag.into(),
            message: message.into(),
        });
    }

    /// Whether the structural pass dropped something under `prefix`.
    pub(super) fn damaged(&self, prefix: &str) -> bool {
        self.structural.iter().any(|p| p == prefix || p.starts_with(&format!("{prefix}.")) || p.starts_with(&format!("{prefix}[")))
    }
}

fn check(
    s: model::Scenario,
    source: Option<PathBuf>,
    o: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Plan {
    if s.name.trim().is_empty() {
        errs.at(&s.name, "name", "the name must not be empty");
    }
    let target = target(s.target.as_ref(), o, errs);
    let load = load(&s.load, target.max_connections, o, errs);
    let mix = mix::mix(&s.mix, s.vars.as_ref(), env, errs);
    let op_names: Vec<String> = mix.operations.iter().map(|op| op.name.clone()).collect();
    // Cross-references to operation names are only checked when the mix was read whole.
    let ops = (!errs.damaged("mix")).then_some(op_names.as_slice());
    let thresholds = observe::thresholds(s.thresholds.as_ref(), ops, errs);
    let faults = observe::faults(s.faults.as_deref(), ops, load.duration(), errs);
    let mut verify = s.verify.as_ref().map(|v| observe::verify(v, ops, errs));
    if let Some(url) = &o.grafana_url {
        if let Err(m) = observe::check_url(url, true) {
            errs.flag("--grafana-url", m);
        }
        let v = verify.get_or_insert_with(|| super::Verify {
            prometheus_url: None,
            loki_url: None,
            tempo_url: None,
            grafana_url: None,
            deadline: defaults::VERIFY_DEADLINE,
            interval: defaults::VERIFY_INTERVAL,
            assertions: Vec::new(),
        });
        v.grafana_url = Some(url.trim_end_matches('/').to_string());
    }
    let telemetry = telemetry(s.telemetry.as_ref(), o, errs);
    let output = output(s.output.as_ref(), o, errs);
    let segment = o.segment.unwrap_or(Segment::WHOLE);
    if segment.count == 0 || segment.index >= segment.count {
        errs.flag("--segment", format!("`{}/{}`: need 0 <= index < count", segment.index, segment.count));
    }
    Plan {
        name: s.name.value.trim().to_string(),
        source,
        target,
        load,
        mix,
        thresholds,
        output,
        // A random seed when none is given; the report prints it so the run can be repeated.
        seed: o.seed.or(s.seed).unwrap_or_else(rand::random),
        faults,
        verify,
        telemetry,
        segment,
    }
}

fn pos<T>(sp: Option<&Sp<T>>) -> Option<(u32, u32)> {
    sp.map(|s| (s.line, s.column))
}

fn dur(v: Option<&Sp<crate::scenario::units::Duration>>, default: Duration) -> Duration {
    v.map_or(default, |d| d.value.0)
}

fn positive(errs: &mut Errors, v: Option<&Sp<crate::scenario::units::Duration>>, field: &str) {
    if let Some(d) = v.filter(|d| d.value.0.is_zero()) {
        errs.at(d, field, "must be longer than 0");
    }
}

fn target(t: Option<&model::TargetSpec>, o: &Overrides, errs: &mut Errors) -> Target {
    let base_url = match (&o.target_url, t.and_then(|t| t.url.as_ref())) {
        (Some(url), _) => parse_base_url(url).map_err(|m| errs.flag("--target-url", m)).ok(),
        (None, Some(url)) => parse_base_url(url).map_err(|m| errs.at(url, "target.url", m)).ok(),
        (None, None) => None,
    };
    let mut headers = Vec::new();
    for (name, value) in t.and_then(|t| t.headers.as_ref()).map_or(&[][..], |h| &h.0) {
        if !is_token(name) {
            errs.at(name, format!("target.headers.{}", name.value), "not a valid header name");
        }
        headers.push((name.value.clone(), value.value.clone()));
    }
    let ready = t.and_then(|t| t.ready.as_ref());
    if let Some(p) = ready.and_then(|r| r.path.as_ref()).filter(|p| !p.starts_with('/')) {
        errs.at(p, "target.ready.path", "must start with `/`");
    }
    positive(errs, t.and_then(|t| t.connect_timeout.as_ref()), "target.connect_timeout");
    positive(errs, t.and_then(|t| t.request_timeout.as_ref()), "target.request_timeout");
    positive(errs, ready.and_then(|r| r.interval.as_ref()), "target.ready.interval");
    let max_connections = t.and_then(|t| t.max_connections.as_ref());
    if let Some(m) = max_connections.filter(|m| m.value == 0) {
        errs.at(m, "target.max_connections", "must be at least 1");
    }
    Target {
        base_url,
        headers,
        connect_timeout: dur(t.and_then(|t| t.connect_timeout.as_ref()), defaults::CONNECT_TIMEOUT),
        request_timeout: dur(t.and_then(|t| t.request_timeout.as_ref()), defaults::REQUEST_TIMEOUT),
        ready: Readiness {
            path: ready
                .and_then(|r| r.path.as_ref())
                .map_or(defaults::READY_PATH.to_string(), |p| p.value.clone()),
            timeout: dur(ready.and_then(|r| r.timeout.as_ref()), defaults::READY_TIMEOUT),
            interval: dur(ready.and_then(|r| r.interval.as_ref()), defaults::READY_INTERVAL),
        },
        max_connections: max_connections.map_or(defaults::MAX_CONNECTIONS, |m| m.value),
    }
}

/// An RFC 9110 token (header names, methods).
pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `http://host[:port][/prefix]`.
pub fn parse_base_url(url: &str) -> Result<BaseUrl, String> {
    let url = url.trim();
    if url.starts_with("https://") {
        return Err(format!("`{url}`: https is not supported yet (TLS to the target is not implemented); use http://"));
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}` is not an http URL (expected http://host:port)"))?;
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if prefix.contains(['?', '#']) {
        return Err(format!("`{url}`: the target URL cannot have a query or fragment"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']').ok_or_else(|| format!("`{url}`: unclosed `[` in the host"))?;
        let port = v6[end + 1..].strip_prefix(':');
        (&authority[..end + 2], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains(['@', ' ']) {
        return Err(format!("`{url}`: missing or invalid host"));
    }
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("`{url}`: `{p}` is not a port"))?,
        None => 80,
    };
    Ok(BaseUrl {
        scheme: "http".into(),
        host: host.to_string(),
        port,
        prefix: prefix.trim_end_matches('/').to_string(),
    })
}

fn load(l: &Sp<model::LoadSpec>, max_connections: u32, o: &Overrides, errs: &mut Errors) -> LoadModel {
    let stages = &l.stages.value;
    let inferred = if stages.iter().any(|s| s.vus.is_some()) && stages.iter().all(|s| s.rate.is_none()) {
        ModelName::Closed
    } else {
        ModelName::Open
    };
    let model = l.model.as_ref().map_or(inferred, |m| m.value);
    if stages.is_empty() && !errs.damaged("load.stages") {
        errs.at(&l.stages, "load.stages", "at least one stage is needed");
    }
    for (i, s) in stages.iter().enumerate() {
        if s.duration.value.0.is_zero() {
            errs.at(&s.duration, format!("load.stages[{i}].duration"), "a stage must last longer than 0");
        }
        // A stage whose `rate`/`vus` was rejected already is not missing it.
        if errs.damaged(&format!("load.stages[{i}]")) {
            continue;
        }
        match (model, &s.rate, &s.vus) {
            (ModelName::Open, None, _) => errs.at(s, format!("load.stages[{i}]"), "open-model stages need `rate`"),
            (ModelName::Closed, _, None) => errs.at(s, format!("load.stages[{i}]"), "closed-model stages need `vus`"),
            _ => {}
        }
        match (model, &s.rate, &s.vus) {
            (ModelName::Open, _, Some(v)) => errs.at(v, format!("load.stages[{i}].vus"), "`vus` belongs to closed-model stages (this load is open)"),
            (ModelName::Closed, Some(r), _) => errs.at(r, format!("load.stages[{i}].rate"), "`rate` belongs to open-model stages (this load is closed)"),
            _ => {}
        }
    }
    let only = |errs: &mut Errors, present: Option<(u32, u32)>, field: &str, model_name: &str| {
        if let Some((line, column)) = present {
            errs.at_pos(line, column, format!("load.{field}"), format!("`{field}` applies to the {model_name} model only"));
        }
    };
    let total: Duration = stages.iter().map(|s| s.duration.value.0).sum();
    let new_total = o.duration.unwrap_or(total);
    if o.duration.is_some_and(|d| d.is_zero()) {
        errs.flag("--duration", "must be longer than 0");
    }
    // Stage lengths scale by one factor so ramps keep their shape.
    let scale = |d: Duration| {
        if total.is_zero() { d } else { d.mul_f64(new_total.as_secs_f64() / total.as_secs_f64()) }
    };
    match model {
        ModelName::Open => {
            only(errs, pos(l.start_vus.as_ref()), "start_vus", "closed");
            only(errs, l.think_time.as_ref().map(|s| (s.line, s.column)), "think_time", "closed");
            only(errs, l.max_rate.as_ref().map(|s| (s.line, s.column)), "max_rate", "closed");
            if o.vus.is_some() {
                errs.flag("--vus", "this scenario uses the open model (arrival rate); use --rate");
            }
            let mut rs: Vec<RateStage> = stages
                .iter()
                .map(|s| RateStage { duration: scale(s.duration.value.0), target: s.rate.as_ref().map_or(0.0, |r| r.value.0) })
                .collect();
            let mut start_rate = l.start_rate.as_ref().map_or(rs.first().map_or(0.0, |s| s.target), |r| r.value.0);
            if let Some(rate) = o.rate {
                if !(rate > 0.0 && rate.is_finite()) {
                    errs.flag("--rate", "must be greater than 0");
                }
                rs = vec![RateStage { duration: new_total, target: rate }];
                start_rate = rate;
            } else if !stages.is_empty() && !errs.damaged("load") && start_rate == 0.0 && rs.iter().all(|s| s.target == 0.0) {
                errs.at(&l.stages, "load.stages", "every rate is 0: the load would send nothing");
            }
            let max_in_flight = l.max_in_flight.as_ref().map_or(max_connections, |m| m.value);
            if let Some(m) = l.max_in_flight.as_ref().filter(|m| m.value == 0) {
                errs.at(m, "load.max_in_flight", "must be at least 1");
            }
            LoadModel::Open {
                start_rate,
                stages: rs,
                arrivals: match l.arrivals.as_ref().map(|a| a.value) {
                    Some(ArrivalsName::Poisson) => Arrivals::Poisson,
                    _ => Arrivals::Constant,
                },
                max_in_flight,
                max_queue: l.max_queue.as_ref().map_or(defaults::MAX_QUEUE, |m| m.value),
            }
        }
        ModelName::Closed => {
            only(errs, pos(l.start_rate.as_ref()), "start_rate", "open");
            only(errs, l.arrivals.as_ref().map(|s| (s.line, s.column)), "arrivals", "open");
            only(errs, pos(l.max_in_flight.as_ref()), "max_in_flight", "open");
            only(errs, pos(l.max_queue.as_ref()), "max_queue", "open");
            if o.rate.is_some() {
                errs.flag("--rate", "this scenario uses the closed model (virtual users); use --vus");
            }
            let mut vs: Vec<VuStage> = stages
                .iter()
                .map(|s| VuStage { duration: scale(s.duration.value.0), target: s.vus.as_ref().map_or(0, |v| v.value) })
                .collect();
            let mut start_vus = l.start_vus.as_ref().map_or(vs.first().map_or(0, |s| s.target), |v| v.value);
            if let Some(vus) = o.vus {
                if vus == 0 {
                    errs.flag("--vus", "must be at least 1");
                }
                vs = vec![VuStage { duration: new_total, target: vus }];
                start_vus = vus;
            } else if !stages.is_empty() && !errs.damaged("load") && start_vus == 0 && vs.iter().all(|s| s.target == 0) {
                errs.at(&l.stages, "load.stages", "every stage has 0 VUs: the load would send nothing");
            }
            let think_time = match l.think_time.as_ref().map(|t| (t, &t.value)) {
                None => ThinkTime::None,
                Some((_, ThinkTimeSpec::Fixed(d))) if d.0.is_zero() => ThinkTime::None,
                Some((_, ThinkTimeSpec::Fixed(d))) => ThinkTime::Fixed(d.0),
                Some((t, ThinkTimeSpec::Uniform { min, max })) => {
                    if min > max {
                        errs.at(t, "load.think_time", "`min` is above `max`");
                    }
                    ThinkTime::Uniform(min.0, max.0)
                }
            };
            let max_rate = l.max_rate.as_ref().map(|r| {
                if r.value.0 <= 0.0 {
                    errs.at(r, "load.max_rate", "must be greater than 0");
                }
                r.value.0
            });
            LoadModel::Closed { start_vus, stages: vs, think_time, max_rate }
        }
    }
}

fn telemetry(t: Option<&model::TelemetrySpec>, o: &Overrides, errs: &mut Errors) -> Telemetry {
    let metrics_addr = match (o.metrics_addr, t.and_then(|t| t.metrics_addr.as_ref())) {
        (Some(a), _) => Some(a),
        (None, Some(a)) => a
            .trim()
            .parse()
            .map_err(|_| errs.at(a, "telemetry.metrics_addr", format!("`{}` is not an address like 127.0.0.1:9464", a.value)))
            .ok(),
        (None, None) => None,
    };
    let url = |errs: &mut Errors, flag: &Option<String>, flag_name: &str, sp: Option<&Sp<String>>, field: &str| match (flag, sp) {
        (Some(u), _) => observe::check_url(u, true).map_err(|m| errs.flag(flag_name, m)).ok().map(|_| u.clone()),
        (None, Some(u)) => observe::check_url(u, true).map_err(|m| errs.at(u, field, m)).ok().map(|_| u.value.clone()),
        (None, None) => None,
    };
    let pushgateway = url(errs, &o.pushgateway, "--pushgateway", t.and_then(|t| t.pushgateway.as_ref()), "telemetry.pushgateway");
    let remote_write = url(errs, &o.remote_write, "--remote-write", t.and_then(|t| t.remote_write.as_ref()), "telemetry.remote_write");
    Telemetry {
        metrics_addr,
        linger: o.linger.unwrap_or_else(|| dur(t.and_then(|t| t.linger.as_ref()), defaults::LINGER)),
        pushgateway,
        remote_write,
        trace_sample_ratio: t
            .and_then(|t| t.trace_sample_ratio.as_ref())
            .map_or(defaults::TRACE_SAMPLE_RATIO, |r| r.value.0),
    }
}

fn output(out: Option<&model::OutputSpec>, o: &Overrides, errs: &mut Errors) -> Output {
    positive(errs, out.and_then(|x| x.interval.as_ref()), "output.interval");
    let report = o.report.clone().or_else(|| {
        out.and_then(|x| x.report.as_ref()).map(|r| {
            if r.trim().is_empty() {
                errs.at(r, "output.report", "the report path must not be empty");
            }
            PathBuf::from(&r.value)
        })
    });
    Output {
        report,
        progress: o.progress.unwrap_or(match out.and_then(|x| x.progress.as_ref()).map(|p| p.value) {
            Some(ProgressName::Plain) => Progress::Plain,
            Some(ProgressName::Quiet) => Progress::Quiet,
            _ => Progress::Auto,
        }),
        interval: dur(out.and_then(|x| x.interval.as_ref()), defaults::INTERVAL),
        keep_traces: out.and_then(|x| x.keep_traces.as_ref()).map_or(defaults::KEEP_TRACES, |k| k.value as usize),
    }
}
