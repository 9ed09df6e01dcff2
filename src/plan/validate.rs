//! Scenario + command-line overrides → `Plan`, reporting every problem at once.
//!
//! `build` reads the file, deserializes it (`scenario::parse`, which already collects every
//! structural problem), then checks meaning section by section, each check adding to one list
//! of located `PlanError`s sorted by position. Sections: this file (target, load, output,
//! telemetry, overrides), `mix.rs` (operations, checks, templates), `observe.rs` (thresholds,
//! faults, verify).

mod compare;
mod expect;
pub mod limits;
mod load;
mod mix;
mod observe;
mod target;

use target::is_token;
pub use target::parse_base_url;

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Output, Plan, Progress, Segment, Telemetry};
use crate::scenario::Sp;
use crate::scenario::model;

/// Command-line (and environment) values that replace the scenario's.
///
/// Precedence, highest first: **command-line flag, then environment variable
/// (`TRAFFICGEN_<FLAG>`), then scenario file, then built-in default.** clap resolves the first
/// two into this struct (a flag wins over its environment variable); `build` applies whatever
/// is set here over the scenario, and the scenario over the defaults. `duration` scales every
/// stage and every fault window by the same factor (ramps and the fault timeline keep their
/// shape); `rate` replaces an open model's stages with one constant stage, `vus` a closed
/// model's with one constant VU stage (both over the scenario's, or the overridden, total
/// duration). `grafana_url` creates an empty `verify` when the scenario has none, so trace
/// links still work.
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
    pub instance: Option<String>,
    pub pushgateway: Option<String>,
    pub remote_write: Option<String>,
    pub grafana_url: Option<String>,
    pub html: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub dashboard: Option<std::net::SocketAddr>,
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
    /// Response body bytes kept per request for checks and captures (1 MiB).
    pub const MAX_BODY: u64 = 1 << 20;
    pub const MAX_STREAMS: u32 = 100;
    pub const INTERVAL: Duration = Duration::from_secs(1);
    pub const KEEP_TRACES: usize = 10;
    pub const POOL_CAPACITY: usize = 1000;
    /// Bound on `mix.cleanup` (deleting what the run created, after the load).
    pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);
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
    let text = read_bounded(path, limits::MAX_FILE_BYTES, "the scenario").map_err(|message| {
        vec![PlanError {
            file: file.clone(),
            line: 0,
            column: 0,
            field: "file".into(),
            message,
        }]
    })?;
    build_from_str(&text, &file, Some(path.to_path_buf()), overrides, env)
}

/// The file's text, refused without reading it whole when it is larger than `max` bytes (a
/// regular file by its length, anything else — `/dev/zero`, a pipe — by reading `max + 1`).
pub(crate) fn read_bounded(path: &Path, max: u64, what: &str) -> Result<String, String> {
    use std::io::Read as _;
    let too_big = || {
        format!(
            "{what} is larger than the limit of {max} bytes ({} MiB)",
            max >> 20
        )
    };
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read {what}: {e}"))?;
    if f.metadata().is_ok_and(|m| m.is_file() && m.len() > max) {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {what}: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{what} is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
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
    let mut errs = Errors {
        file: file.to_string(),
        list: Vec::new(),
        structural: Vec::new(),
        lines: text.lines().map(str::to_string).collect(),
    };
    for p in problems {
        if p.dropped {
            errs.structural.push(p.path.clone());
        }
        errs.at_pos(p.line, p.column, p.path, p.message);
    }
    let plan = scenario.map(|s| check(s, source, overrides, env, &mut errs));
    // Problems in the file first, by position; command-line problems last.
    errs.list
        .sort_by_key(|e| (e.file != *file, e.line, e.column));
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
    /// The file's lines, to point inside single-line scalars.
    lines: Vec<String>,
}

impl Errors {
    fn at_pos(
        &mut self,
        line: u32,
        column: u32,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.list.push(PlanError {
            file: self.file.clone(),
            line: line as usize,
            column: column as usize,
            field: field.into(),
            message: message.into(),
        });
    }

    /// Like `at`, but at character `offset` inside the single-line string `sp` (past its
    /// opening quote, if quoted); at the node itself when the text spans lines.
    pub(super) fn inside(
        &mut self,
        sp: &Sp<String>,
        offset: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        let line = self.lines.get((sp.line as usize).wrapping_sub(1));
        let first = line.and_then(|l| l.chars().nth((sp.column as usize).wrapping_sub(1)));
        let column = match first {
            _ if sp.line == 0 || sp.contains('\n') => sp.column,
            Some('"' | '\'') => sp.column + 1 + offset as u32,
            Some(_) => sp.column + offset as u32,
            None => sp.column,
        };
        self.at_pos(sp.line, column, field, message);
    }

    pub(super) fn at<T>(
        &mut self,
        sp: &Sp<T>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.at_pos(sp.line, sp.column, field, message);
    }

    pub(super) fn flag(&mut self, flag: &str, message: impl Into<String>) {
        self.list.push(PlanError {
            file: COMMAND_LINE.into(),
            line: 0,
            column: 0,
            field: flag.into(),
            message: message.into(),
        });
    }

    /// Whether the structural pass dropped something under `prefix`.
    /// Whether every operation's name survived the structural pass.
    fn names_intact(&self) -> bool {
        !self.structural.iter().any(|p| {
            p.is_empty()
                || p == "mix"
                || p == "mix.operations"
                || (p.starts_with("mix.operations[")
                    && (p.ends_with(']') || p.ends_with(".name") || p.ends_with(".todo")))
        })
    }

    /// Also when a section above `prefix` was dropped whole (`load` damages `load.stages`).
    pub(super) fn damaged(&self, prefix: &str) -> bool {
        let under = |a: &str, b: &str| {
            a == b || a.starts_with(&format!("{b}.")) || a.starts_with(&format!("{b}["))
        };
        self.structural
            .iter()
            .any(|p| under(p, prefix) || (!p.is_empty() && under(prefix, p)))
    }
}

fn check(
    s: model::Scenario,
    source: Option<PathBuf>,
    o: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Plan {
    if s.name.trim().is_empty() && !errs.damaged("name") {
        errs.at(&s.name, "name", "the name must not be empty");
    }
    // First: nothing below may compute with a value beyond its limit unchecked.
    limits::check(&s, o, errs);
    let constants = mix::constants(s.vars.as_ref(), env, errs);
    let target = target::target(s.target.as_ref(), o, &constants, env, errs);
    let load = load::load(&s.load, target.max_connections, o, errs);
    if let Some(limit) = limits::fd_limit() {
        fd_check(&s, target.base_url.is_none(), &load, o, limit, errs);
    }
    let mix = mix::mix(&s.mix, &constants, env, errs);
    let op_names: Vec<String> = mix.operations.iter().map(|op| op.name.clone()).collect();
    // Cross-references to operation names are only checked when every name was read: a bad
    // weight loses no name, a dropped operation (or its name) might be the one referred to.
    let ops = errs.names_intact().then_some(op_names.as_slice());
    let with_checks: Vec<String> = mix
        .operations
        .iter()
        .filter(|op| {
            !op.checks.is_empty()
                || matches!(&op.kind, super::OpKind::Flow(steps) if steps.iter().any(|s| !s.checks.is_empty()))
        })
        .map(|op| op.name.clone())
        .collect();
    let refs = observe::Refs {
        ops,
        with_checks: ops.map(|_| with_checks.as_slice()),
        run: if errs.damaged("load") {
            Duration::ZERO
        } else {
            load.duration()
        },
    };
    let thresholds = observe::thresholds(s.thresholds.as_ref(), &refs, errs);
    let compare = compare::rules(s.compare.as_ref(), ops, errs);
    // --duration rescales the fault timeline with the stages, so windows keep their place.
    let scenario_total = s.load.stages.iter().fold(Duration::ZERO, |t, st| {
        t.saturating_add(st.duration.value.0)
    });
    let factor = match o.duration {
        Some(d) if !scenario_total.is_zero() => d.as_secs_f64() / scenario_total.as_secs_f64(),
        _ => 1.0,
    };
    let faults = observe::faults(s.faults.as_deref(), ops, load.duration(), factor, errs);
    let mut verify = s.verify.as_ref().map(|v| observe::verify(v, ops, errs));
    // `traces: faulted` reads the requests the generator faulted itself: header faults only.
    if let Some(v) = s.verify.as_ref().filter(|_| !errs.damaged("faults"))
        && !faults.iter().any(|f| f.via == super::FaultVia::Header)
    {
        for (i, a) in v.assertions.iter().enumerate() {
            if let Some(t) = a
                .traces
                .as_ref()
                .filter(|t| t.value == super::TraceSet::Faulted)
            {
                errs.at(
                    t,
                    format!("verify.assertions[{i}].traces"),
                    "`faulted` needs a header fault window (`faults` with `via: header`, the \
                     default): no request would be faulted",
                );
            }
        }
    }
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
        errs.flag(
            "--segment",
            format!(
                "`{}/{}`: need 0 <= index < count",
                segment.index, segment.count
            ),
        );
    }
    let schedule = super::ScheduleRules {
        drain: s.load.drain.as_ref().map(|d| d.value.0),
        allow_miss: s.load.allow_schedule_miss.as_ref().is_some_and(|b| b.value),
    };
    Plan {
        name: s.name.value.trim().to_string(),
        source,
        target,
        load,
        mix,
        thresholds,
        compare,
        output,
        // A random seed when none is given; the report prints it so the run can be repeated.
        seed: o.seed.or(s.seed).unwrap_or_else(rand::random),
        faults,
        verify,
        telemetry,
        segment,
        schedule,
    }
}

/// Connections (open model) or VUs (closed model) beyond the process's file descriptors are a
/// problem at the value that asks for them.
fn fd_check(
    s: &model::Scenario,
    embedded: bool,
    load: &super::LoadModel,
    o: &Overrides,
    limit: u64,
    errs: &mut Errors,
) {
    let t = s.target.as_ref();
    match load {
        super::LoadModel::Open { max_in_flight, .. } => {
            let conns = u64::from(
                (*max_in_flight).min(
                    t.and_then(|t| t.max_connections.as_ref())
                        .map_or(defaults::MAX_CONNECTIONS, |m| m.value),
                ),
            );
            // Beyond `MAX_CONNECTIONS` is reported by `limits` already.
            let within = conns <= u64::from(limits::MAX_CONNECTIONS);
            let Some(m) = limits::fd_problem(conns, embedded, limit).filter(|_| within) else {
                return;
            };
            let mc = t.and_then(|t| t.max_connections.as_ref());
            let mif = s.load.max_in_flight.as_ref();
            match (mc, mif) {
                (Some(c), Some(f)) if f.value < c.value => errs.at(f, "load.max_in_flight", m),
                (Some(c), _) => errs.at(c, "target.max_connections", m),
                (None, Some(f)) => errs.at(f, "load.max_in_flight", m),
                (None, None) => {}
            }
        }
        super::LoadModel::Closed {
            start_vus, stages, ..
        } => {
            let most = stages.iter().map(|s| s.target).fold(*start_vus, u32::max);
            let within = most <= limits::MAX_VUS;
            let Some(m) = limits::fd_problem(u64::from(most), embedded, limit).filter(|_| within)
            else {
                return;
            };
            if o.vus.is_some() {
                return errs.flag("--vus", m);
            }
            let at_stage = s.load.stages.iter().enumerate().find_map(|(i, st)| {
                st.vus
                    .as_ref()
                    .filter(|v| v.value == most)
                    .map(|v| (v, format!("load.stages[{i}].vus")))
            });
            match (at_stage, s.load.start_vus.as_ref()) {
                (Some((v, field)), _) => errs.at(v, field, m),
                (None, Some(v)) => errs.at(v, "load.start_vus", m),
                (None, None) => {}
            }
        }
    }
}

pub(super) fn pos<T>(sp: Option<&Sp<T>>) -> Option<(u32, u32)> {
    sp.map(|s| (s.line, s.column))
}

pub(super) fn dur(v: Option<&Sp<crate::scenario::units::Duration>>, default: Duration) -> Duration {
    v.map_or(default, |d| d.value.0)
}

pub(super) fn positive(
    errs: &mut Errors,
    v: Option<&Sp<crate::scenario::units::Duration>>,
    field: &str,
) {
    if let Some(d) = v.filter(|d| d.value.0.is_zero()) {
        errs.at(d, field, "must be longer than 0");
    }
}

fn telemetry(t: Option<&model::TelemetrySpec>, o: &Overrides, errs: &mut Errors) -> Telemetry {
    let metrics_addr = match (o.metrics_addr, t.and_then(|t| t.metrics_addr.as_ref())) {
        (Some(a), _) => Some(a),
        (None, Some(a)) => a
            .trim()
            .parse()
            .map_err(|_| {
                errs.at(
                    a,
                    "telemetry.metrics_addr",
                    format!("`{}` is not an address like 127.0.0.1:9464", a.value),
                )
            })
            .ok(),
        (None, None) => None,
    };
    let url = |errs: &mut Errors,
               flag: &Option<String>,
               flag_name: &str,
               sp: Option<&Sp<String>>,
               field: &str| match (flag, sp) {
        (Some(u), _) => observe::check_url(u, true)
            .map_err(|m| errs.flag(flag_name, m))
            .ok()
            .map(|_| u.clone()),
        (None, Some(u)) => observe::check_url(u, true)
            .map_err(|m| errs.at(u, field, m))
            .ok()
            .map(|_| u.value.clone()),
        (None, None) => None,
    };
    let pushgateway = url(
        errs,
        &o.pushgateway,
        "--pushgateway",
        t.and_then(|t| t.pushgateway.as_ref()),
        "telemetry.pushgateway",
    );
    let remote_write = url(
        errs,
        &o.remote_write,
        "--remote-write",
        t.and_then(|t| t.remote_write.as_ref()),
        "telemetry.remote_write",
    );
    Telemetry {
        metrics_addr,
        linger: o
            .linger
            .unwrap_or_else(|| dur(t.and_then(|t| t.linger.as_ref()), defaults::LINGER)),
        pushgateway,
        remote_write,
        trace_sample_ratio: t
            .and_then(|t| t.trace_sample_ratio.as_ref())
            .map_or(defaults::TRACE_SAMPLE_RATIO, |r| r.value.0),
        instance: o
            .instance
            .as_ref()
            .map(|i| i.trim().to_string())
            .filter(|i| !i.is_empty()),
    }
}

fn output(out: Option<&model::OutputSpec>, o: &Overrides, errs: &mut Errors) -> Output {
    positive(
        errs,
        out.and_then(|x| x.interval.as_ref()),
        "output.interval",
    );
    let report = o.report.clone().or_else(|| {
        out.and_then(|x| x.report.as_ref()).map(|r| {
            if r.trim().is_empty() {
                errs.at(r, "output.report", "the report path must not be empty");
            }
            PathBuf::from(&r.value)
        })
    });
    let path =
        |flag: &Option<PathBuf>, spec: Option<&Sp<String>>, field: &str, errs: &mut Errors| {
            flag.clone().or_else(|| {
                spec.map(|r| {
                    if r.trim().is_empty() {
                        errs.at(r, field, "the path must not be empty");
                    }
                    PathBuf::from(&r.value)
                })
            })
        };
    let html = path(
        &o.html,
        out.and_then(|x| x.html.as_ref()),
        "output.html",
        errs,
    );
    let junit = path(
        &o.junit,
        out.and_then(|x| x.junit.as_ref()),
        "output.junit",
        errs,
    );
    let dashboard_token = std::env::var("TRAFFICGEN_DASHBOARD_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    if let Some(a) = o.dashboard
        && !a.ip().is_loopback()
        && dashboard_token.is_none()
    {
        errs.flag(
            "--dashboard",
            format!("{a} is beyond loopback: set TRAFFICGEN_DASHBOARD_TOKEN to a secret token"),
        );
    }
    Output {
        report,
        progress: o.progress.unwrap_or(
            out.and_then(|x| x.progress.as_ref())
                .map_or(Progress::Auto, |p| p.value),
        ),
        interval: dur(out.and_then(|x| x.interval.as_ref()), defaults::INTERVAL),
        keep_traces: out
            .and_then(|x| x.keep_traces.as_ref())
            .map_or(defaults::KEEP_TRACES, |k| k.value as usize),
        html,
        junit,
        dashboard: o.dashboard,
        dashboard_token,
    }
}
