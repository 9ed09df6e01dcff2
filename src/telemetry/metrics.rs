//! The `trafficgen_*` metric model: one immutable set of families built from the latest
//! `Snapshot` (plus the run-level state that only the report knows), which every output
//! renders — `/metrics` in both text formats, the Pushgateway push, remote write and OTLP.
//!
//! Counters are *set* from the snapshot's cumulative values, never incremented per request,
//! and histograms are bucketed from the HdrHistograms at each tick: the hot path stays in the
//! recorder.

use hdrhistogram::Histogram;

use crate::recorder::{ErrorKind, OpSnapshot, Snapshot};

/// Upper bounds (seconds) of every `trafficgen_*_seconds` histogram (CONTRACTS.md).
pub const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric family. Counter names carry no `_total`: the renderers add it where the format
/// wants it (OpenMetrics names the family without it, the sample with it).
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub series: Vec<Series>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// `scenario`, `op`, `run_id` first, then the family's own labels.
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Histogram(Buckets),
}

/// A classic histogram: cumulative counts per `BUCKETS` bound (the `+Inf` bucket is `count`).
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    pub cumulative: [u64; BUCKETS.len()],
    pub count: u64,
    /// Seconds; from the HdrHistogram's mean, so exact up to its 3 significant digits.
    pub sum: f64,
    pub exemplar: Option<Exemplar>,
}

/// The op's most recent trace, attached to the bucket its value falls in.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub trace_id: String,
    /// Seconds.
    pub value: f64,
}

impl Buckets {
    /// Buckets a histogram of microseconds into `BUCKETS` (seconds), cumulative `≤ le`.
    pub fn from_micros(h: &Histogram<u64>, exemplar: Option<Exemplar>) -> Buckets {
        let mut per = [0u64; BUCKETS.len()];
        for v in h.iter_recorded() {
            // The highest value equivalent to the recorded one: a value counted here is never
            // in a lower bucket than its true one.
            let secs = v.value_iterated_to() as f64 / 1e6;
            if let Some(i) = BUCKETS.iter().position(|&le| secs <= le) {
                per[i] += v.count_at_value();
            }
        }
        let mut cumulative = [0u64; BUCKETS.len()];
        let mut acc = 0;
        for (i, n) in per.iter().enumerate() {
            acc += n;
            cumulative[i] = acc;
        }
        let count = h.len();
        let sum = if count == 0 {
            0.0
        } else {
            h.mean() * count as f64 / 1e6
        };
        Buckets {
            cumulative,
            count,
            sum,
            exemplar,
        }
    }

    /// Index of the bucket (into `BUCKETS`, or `BUCKETS.len()` for `+Inf`) holding `secs`.
    pub fn bucket_of(secs: f64) -> usize {
        BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(BUCKETS.len())
    }
}

/// What the run knows that a snapshot does not: verdicts and the finished flag.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdicts {
    /// (threshold source text, failing)
    pub thresholds: Vec<(String, bool)>,
    /// (assertion name, failing)
    pub assertions: Vec<(String, bool)>,
    pub finished: bool,
}

/// The fixed identity of a run's series.
#[derive(Debug, Clone)]
pub struct Identity {
    pub scenario: String,
    pub run_id: String,
    /// Operation names, in plan order (series exist at 0 before the first request).
    pub ops: Vec<String>,
    /// Fault window kinds ("latency" | "error"), by window index.
    pub windows: Vec<String>,
    /// Flow steps (flow's op name, step name), in `Mix::flow_steps` order.
    pub steps: Vec<(String, String)>,
}

impl Identity {
    fn labels(&self, op: &str) -> Vec<(&'static str, String)> {
        vec![
            ("scenario", self.scenario.clone()),
            ("op", op.to_string()),
            ("run_id", self.run_id.clone()),
        ]
    }
    fn with(&self, op: &str, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        let mut l = self.labels(op);
        l.extend(extra.iter().map(|&(k, v)| (k, v.to_string())));
        l
    }
}

/// The run-level values of a snapshot (op="all" gauges).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunGauges {
    pub target_rate: f64,
    pub achieved_rate: f64,
    pub in_flight: u64,
    pub vus: u64,
    pub active_faults: Vec<usize>,
}

impl RunGauges {
    pub fn of(s: &Snapshot) -> RunGauges {
        RunGauges {
            target_rate: s.target_rate,
            achieved_rate: s.achieved_rate,
            in_flight: s.in_flight,
            vus: s.vus,
            active_faults: s.active_faults.clone(),
        }
    }
}

/// Builds the per-operation families. `ops` is `None` before the first snapshot: every
/// series exists at zero, so the first increase is not lost to `rate()`.
pub fn op_families(id: &Identity, ops: Option<&[OpSnapshot]>) -> Vec<Family> {
    let empty: Vec<OpView> = id.ops.iter().map(|n| OpView::empty(n)).collect();
    let views: Vec<OpView> = match ops {
        Some(ops) => ops.iter().map(OpView::of).collect(),
        None => empty,
    };
    let mut fams = Vec::with_capacity(20);
    let counter = |name, help, series| Family {
        name,
        help,
        kind: Kind::Counter,
        series,
    };
    let num = |labels, v: f64| Series {
        labels,
        value: Value::Number(v),
    };

    let mut s = Vec::new();
    for v in &views {
        let c = &v.op.counts;
        let answered: u64 = c.status_class.iter().sum();
        for (i, class) in STATUS_CLASSES.iter().enumerate() {
            s.push(num(
                id.with(&v.op.name, &[("status_class", class)]),
                c.status_class[i] as f64,
            ));
        }
        let none = c.requests.saturating_sub(answered);
        s.push(num(
            id.with(&v.op.name, &[("status_class", "none")]),
            none as f64,
        ));
    }
    fams.push(counter(
        "trafficgen_requests",
        "Requests sent, by status class of the response (none = no response).",
        s,
    ));

    let mut s = Vec::new();
    for v in &views {
        for k in ErrorKind::ALL {
            let n = v.op.counts.errors[k.index()];
            s.push(num(id.with(&v.op.name, &[("kind", k.as_str())]), n as f64));
        }
    }
    fams.push(counter(
        "trafficgen_errors",
        "Failed requests, by error kind.",
        s,
    ));

    for &(name, help, pick) in HISTOGRAMS {
        let s = views
            .iter()
            .map(|v| {
                let exemplar = if name == "trafficgen_response_time_seconds" {
                    v.op.last_trace.as_ref().map(|t| Exemplar {
                        trace_id: t.trace_id.clone(),
                        value: t.response_time_ms / 1e3,
                    })
                } else {
                    None
                };
                let b = Buckets::from_micros(pick(&v.op), exemplar);
                Series {
                    labels: id.labels(&v.op.name),
                    value: Value::Histogram(b),
                }
            })
            .collect();
        fams.push(Family {
            name,
            help,
            kind: Kind::Histogram,
            series: s,
        });
    }

    type Pick = fn(&crate::recorder::Counts) -> u64;
    let simple: [(&'static str, &'static str, Pick); 10] = [
        (
            "trafficgen_planned",
            "Arrivals that came due (planned = completed + dropped + abandoned).",
            |c| c.planned,
        ),
        (
            "trafficgen_completed",
            "Arrivals whose handling ended (a response, a failure, or an empty id pool).",
            |c| c.completed,
        ),
        (
            "trafficgen_abandoned",
            "Arrivals still queued or in flight when the drain bound passed or a second signal stopped the run.",
            |c| c.abandoned,
        ),
        (
            "trafficgen_behind",
            "Arrivals the generator released more than 10 ms after their intended start (its own lateness).",
            |c| c.behind,
        ),
        (
            "trafficgen_dropped",
            "Arrivals never sent: no connection free and the queue full.",
            |c| c.dropped,
        ),
        (
            "trafficgen_late",
            "Arrivals sent more than 1 ms after they could have been (waiting for a connection).",
            |c| c.late,
        ),
        (
            "trafficgen_empty_pool",
            "Arrivals of a pool operation that found the id pool empty (not sent).",
            |c| c.empty_pool,
        ),
        (
            "trafficgen_retries",
            "Idempotent requests resent automatically after a reused connection closed.",
            |c| c.retries,
        ),
        (
            "trafficgen_sent_bytes",
            "Request bytes written (head and body).",
            |c| c.bytes_sent,
        ),
        (
            "trafficgen_received_bytes",
            "Response bytes received (heads and decoded bodies, kept or not).",
            |c| c.bytes_received,
        ),
    ];
    for (name, help, pick) in simple {
        let s = views
            .iter()
            .map(|v| num(id.labels(&v.op.name), pick(&v.op.counts) as f64))
            .collect();
        fams.push(counter(name, help, s));
    }

    let mut s = Vec::new();
    for v in &views {
        let c = &v.op.counts;
        s.push(num(
            id.with(&v.op.name, &[("result", "pass")]),
            c.checks_passed as f64,
        ));
        s.push(num(
            id.with(&v.op.name, &[("result", "fail")]),
            c.checks_failed as f64,
        ));
    }
    fams.push(counter(
        "trafficgen_checks",
        "Response checks, by result.",
        s,
    ));

    let mut s = Vec::new();
    for v in &views {
        let c = &v.op.counts;
        s.push(num(
            id.with(&v.op.name, &[("kind", "latency")]),
            c.faults_latency as f64,
        ));
        s.push(num(
            id.with(&v.op.name, &[("kind", "error")]),
            c.faults_error as f64,
        ));
    }
    fams.push(counter(
        "trafficgen_faults_injected",
        "Requests the generator faulted with fault headers, by kind.",
        s,
    ));
    fams
}

/// Builds the run-level (`op="all"`) families.
pub fn run_families(id: &Identity, run: &RunGauges, verdicts: &Verdicts) -> Vec<Family> {
    let mut fams = Vec::with_capacity(8);
    let gauge = |name, help, series| Family {
        name,
        help,
        kind: Kind::Gauge,
        series,
    };
    let num = |labels, v: f64| Series {
        labels,
        value: Value::Number(v),
    };
    let all = |extra: &[(&'static str, &str)]| id.with("all", extra);
    fams.push(gauge(
        "trafficgen_target_rate",
        "Planned arrival rate now, per second.",
        vec![num(all(&[]), run.target_rate)],
    ));
    fams.push(gauge(
        "trafficgen_achieved_rate",
        "Completed requests per second over the last interval.",
        vec![num(all(&[]), run.achieved_rate)],
    ));
    fams.push(gauge(
        "trafficgen_in_flight",
        "Requests sent and not yet answered.",
        vec![num(all(&[]), run.in_flight as f64)],
    ));
    fams.push(gauge(
        "trafficgen_vus",
        "Active virtual users (closed model).",
        vec![num(all(&[]), run.vus as f64)],
    ));

    let s = id
        .windows
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let active = run.active_faults.contains(&i);
            num(
                all(&[("window", &i.to_string()), ("kind", kind)]),
                f64::from(u8::from(active)),
            )
        })
        .collect();
    fams.push(gauge(
        "trafficgen_fault_window_active",
        "1 while the fault window is active.",
        s,
    ));

    let s = verdicts
        .thresholds
        .iter()
        .map(|(t, failing)| num(all(&[("threshold", t)]), f64::from(u8::from(*failing))))
        .collect();
    fams.push(gauge(
        "trafficgen_threshold_failing",
        "1 when the threshold failed at the end of the run.",
        s,
    ));
    let s = verdicts
        .assertions
        .iter()
        .map(|(a, failing)| num(all(&[("assertion", a)]), f64::from(u8::from(*failing))))
        .collect();
    fams.push(gauge(
        "trafficgen_assertion_failing",
        "1 when the observability assertion failed.",
        s,
    ));
    fams.push(gauge(
        "trafficgen_run_finished",
        "1 once the load has ended and the values are final.",
        vec![num(all(&[]), f64::from(u8::from(verdicts.finished)))],
    ));
    fams
}

/// The flow steps' own families (a flow's `op` series count whole flows): requests by status
/// class, errors by kind and response time, labelled `op` (the flow) and `step`. `steps` is
/// `None` before the first snapshot (every series at zero).
pub fn step_families(id: &Identity, steps: Option<&[(usize, OpSnapshot)]>) -> Vec<Family> {
    if id.steps.is_empty() {
        return Vec::new();
    }
    let views: Vec<(&str, OpView)> = id
        .steps
        .iter()
        .enumerate()
        .map(|(i, (op, step))| {
            let view = steps
                .and_then(|s| s.get(i))
                .map_or_else(|| OpView::empty(step), |(_, o)| OpView::of(o));
            (op.as_str(), view)
        })
        .collect();
    let labels = |op: &str, step: &str, extra: Option<(&'static str, &str)>| {
        let mut l = id.with(op, &[("step", step)]);
        l.extend(extra.map(|(k, v)| (k, v.to_string())));
        l
    };
    let mut requests = Vec::new();
    let mut errors = Vec::new();
    let mut times = Vec::new();
    for (op, v) in &views {
        let c = &v.op.counts;
        let answered: u64 = c.status_class.iter().sum();
        for (i, class) in STATUS_CLASSES.iter().enumerate() {
            requests.push(Series {
                labels: labels(op, &v.op.name, Some(("status_class", class))),
                value: Value::Number(c.status_class[i] as f64),
            });
        }
        requests.push(Series {
            labels: labels(op, &v.op.name, Some(("status_class", "none"))),
            value: Value::Number(c.requests.saturating_sub(answered) as f64),
        });
        for k in ErrorKind::ALL {
            errors.push(Series {
                labels: labels(op, &v.op.name, Some(("kind", k.as_str()))),
                value: Value::Number(c.errors[k.index()] as f64),
            });
        }
        let exemplar = v.op.last_trace.as_ref().map(|t| Exemplar {
            trace_id: t.trace_id.clone(),
            value: t.response_time_ms / 1e3,
        });
        times.push(Series {
            labels: labels(op, &v.op.name, None),
            value: Value::Histogram(Buckets::from_micros(&v.op.response_time, exemplar)),
        });
    }
    vec![
        Family {
            name: "trafficgen_flow_step_requests",
            help: "Requests of one flow step, by status class of the response (none = no response).",
            kind: Kind::Counter,
            series: requests,
        },
        Family {
            name: "trafficgen_flow_step_errors",
            help: "Failed requests of one flow step, by error kind.",
            kind: Kind::Counter,
            series: errors,
        },
        Family {
            name: "trafficgen_flow_step_response_time_seconds",
            help: "Response time of one flow step (the first from the flow's intended start, the \
                   others from the end of the step before).",
            kind: Kind::Histogram,
            series: times,
        },
    ]
}

type HistPick = fn(&OpSnapshot) -> &Histogram<u64>;
const HISTOGRAMS: &[(&str, &str, HistPick)] = &[
    (
        "trafficgen_response_time_seconds",
        "Response time from the intended start (coordinated-omission corrected).",
        |o| &o.response_time,
    ),
    (
        "trafficgen_service_time_seconds",
        "Service time from the actual send.",
        |o| &o.service_time,
    ),
    (
        "trafficgen_schedule_lag_seconds",
        "Dispatch lag: actual send minus intended start.",
        |o| &o.lag,
    ),
    (
        "trafficgen_phase_connect_seconds",
        "TCP connect time of a new connection (charged to the request that waited for it).",
        |o| &o.phases.connect,
    ),
    (
        "trafficgen_phase_tls_seconds",
        "TLS handshake time of a new connection.",
        |o| &o.phases.tls,
    ),
    (
        "trafficgen_phase_ttfb_seconds",
        "Time from writing the request to the first response byte.",
        |o| &o.phases.ttfb,
    ),
    (
        "trafficgen_phase_receive_seconds",
        "Time from the first to the last response byte.",
        |o| &o.phases.receive,
    ),
];

/// A borrowed or empty op.
struct OpView<'a> {
    op: std::borrow::Cow<'a, OpSnapshot>,
}

impl<'a> OpView<'a> {
    fn of(op: &'a OpSnapshot) -> Self {
        OpView {
            op: std::borrow::Cow::Borrowed(op),
        }
    }
    fn empty(name: &str) -> Self {
        let h = || Histogram::<u64>::new(3).expect("3 significant digits is valid");
        OpView {
            op: std::borrow::Cow::Owned(OpSnapshot {
                name: name.to_string(),
                counts: Default::default(),
                response_time: h(),
                service_time: h(),
                lag: h(),
                last_trace: None,
                phases: Default::default(),
            }),
        }
    }
}
