//! The immutable, merged view of a run that every sink (progress, summary, report, the
//! generator's `/metrics`, OTLP, pushes) and the verdict read: stage (5)→(6) of the data flow.
//!
//! The executor's recorders fill it; sinks, the report and the verdict only read it. Everything
//! here is cumulative since the start of the load unless a field says otherwise.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Why a request did not succeed. A small `Copy` enum counted in an array on the hot path,
/// never boxed, never keyed by a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// TCP connect refused / unreachable / connect timeout.
    Connect,
    /// No complete response within `target.request_timeout`.
    Timeout,
    /// Connection reset or closed mid-request, other socket errors.
    Io,
    /// The response was not valid HTTP/1.1.
    Protocol,
    /// A 4xx status.
    Status4xx,
    /// A 5xx status.
    Status5xx,
    /// A flow step's request could not be built: a captured value with CR, LF or NUL was to
    /// go into a header value. Not sent.
    InvalidRequest,
    /// The generator itself panicked while handling the request (a bug): the run fails.
    Panic,
    /// The TLS handshake failed (unknown issuer, name mismatch, expired certificate, alert).
    Tls,
    /// A flow step's `capture` found nothing in its response (no such JSON pointer, header or
    /// a null value): the step fails and the flow ends, rather than sending an empty value on.
    CaptureMissing,
    /// A flow step's target was a captured URL of another origin (scheme, host and port differ
    /// from the target's): not sent.
    CrossOrigin,
    /// A status below 400 that the operation does not expect: its `expect_status` (or its
    /// status check) names other statuses (k6's `expected_response`). 400 and above outside
    /// them stay `status_4xx` / `status_5xx`.
    UnexpectedStatus,
}

impl ErrorKind {
    pub const COUNT: usize = 12;
    pub const ALL: [ErrorKind; ErrorKind::COUNT] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Io,
        ErrorKind::Protocol,
        ErrorKind::Status4xx,
        ErrorKind::Status5xx,
        ErrorKind::InvalidRequest,
        ErrorKind::Panic,
        ErrorKind::Tls,
        ErrorKind::CaptureMissing,
        ErrorKind::CrossOrigin,
        ErrorKind::UnexpectedStatus,
    ];
    /// The `kind` label value and report key.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Io => "io",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Status4xx => "status_4xx",
            ErrorKind::Status5xx => "status_5xx",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Panic => "panic",
            ErrorKind::Tls => "tls",
            ErrorKind::CaptureMissing => "capture_missing",
            ErrorKind::CrossOrigin => "cross_origin",
            ErrorKind::UnexpectedStatus => "unexpected_status",
        }
    }
    /// Position in `ALL` and in `Counts::errors` (the declaration order).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Reads a list of error counts by kind that may be shorter than `ErrorKind::COUNT` (a report
/// of a version that knew fewer kinds, which are appended at the end): the rest are 0.
pub fn error_counts<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<[u64; ErrorKind::COUNT], D::Error> {
    let v: Vec<u64> = Vec::deserialize(d)?;
    if v.len() > ErrorKind::COUNT {
        return Err(serde::de::Error::custom(format!(
            "{} error kinds, at most {} are known",
            v.len(),
            ErrorKind::COUNT
        )));
    }
    let mut out = [0; ErrorKind::COUNT];
    out[..v.len()].copy_from_slice(&v);
    Ok(out)
}

/// Counters of one operation (or of the whole run). Serialized as is into the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Counts {
    /// Requests that got a response or failed (everything that was sent).
    pub requests: u64,
    /// Responses by status class: index 0 = 1xx … 4 = 5xx.
    pub status_class: [u64; 5],
    /// Exact status codes seen, ascending (code, count); bounded by what HTTP allows.
    pub status: Vec<(u16, u64)>,
    /// Failures by kind, in the order connect, timeout, io, protocol, status_4xx, status_5xx,
    /// invalid_request, panic, tls, capture_missing, cross_origin, unexpected_status
    /// (`ErrorKind::index()`). A
    /// report written before a kind existed has a shorter list: read with zeros for the rest.
    #[serde(deserialize_with = "error_counts")]
    pub errors: [u64; ErrorKind::COUNT],
    /// Requests sent again automatically: over HTTP/1.1 idempotent ones whose reused
    /// connection was closed before any byte of the response arrived; over HTTP/2 any the
    /// server declared unprocessed (above its GOAWAY's last stream, or refused). Not in
    /// `requests`.
    pub retries: u64,
    /// Panics inside the generator (a request's handling or a whole connection task). Any
    /// panic fails the run; a request that panicked is also in `errors` as `panic`.
    pub panics: u64,
    /// Request bytes written (head and body, retries included); over HTTP/2 the frames
    /// queued: HPACK-coded heads, and the body as far as it was sent.
    pub bytes_sent: u64,
    /// Response bytes received: heads and decoded bodies, also the body bytes beyond
    /// `target.max_body` that were read and discarded.
    pub bytes_received: u64,
    /// Arrivals never sent: no connection free and the queue full (open model).
    pub dropped: u64,
    /// Arrivals sent later than 1 ms after they could have been: after their pick-up by a
    /// connection that was free at their release (its connect time), after their intended
    /// start when they had to wait for a connection (open model). The dispatcher's own timer lag is not
    /// counted here; it shows in the schedule-lag histogram and in `behind`.
    pub late: u64,
    /// Arrivals of a pool operation (get/update/toggle/delete) that found the id pool empty:
    /// not sent, counted here.
    pub empty_pool: u64,
    pub checks_passed: u64,
    pub checks_failed: u64,
    /// Requests the generator faulted itself with fault headers, by kind.
    pub faults_latency: u64,
    pub faults_error: u64,
    /// Arrivals that came due while the load ran (open model: every arrival of the schedule
    /// up to the end or the stop; closed model: every request a VU started). Always
    /// `planned == completed + dropped + abandoned` (the accounting identity).
    #[serde(default)]
    pub planned: u64,
    /// Arrivals whose handling ended: a response, a failure, a refused flow step, or not sent
    /// because the id pool was empty (`empty_pool`). A flow is one arrival however many steps.
    #[serde(default)]
    pub completed: u64,
    /// Arrivals still waiting for a connection, in flight, or due but not yet released when
    /// the drain bound passed or a second signal stopped the run at once. They count in the
    /// `dropped` share of thresholds and in the response-time histogram with the time they
    /// had waited (a lower bound of their latency).
    #[serde(default)]
    pub abandoned: u64,
    /// Arrivals the dispatcher released more than `recorder::BEHIND_US` after their intended
    /// start, or dropped while it was releasing in bulk (more than a whole chunk due at one
    /// wake-up: the connections looked busy because the generator gave them no time): the
    /// generator's own lateness, the input of the schedule health check.
    #[serde(default)]
    pub behind: u64,
}

/// A request worth pointing at: one of the slowest, a failure, or a faulted one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TraceRef {
    /// 32 lowercase hex digits, as in the request's `traceparent`.
    pub trace_id: String,
    pub op: String,
    /// Offset of the intended start from the start of the load.
    pub at_ms: f64,
    pub response_time_ms: f64,
    /// HTTP status, or `None` when the request failed before a response.
    pub status: Option<u16>,
    pub error: Option<ErrorKind>,
    /// Whether the generator faulted this request, and how ("latency" | "error").
    pub fault: Option<String>,
}

/// One operation's cumulative figures.
#[derive(Debug, Clone)]
pub struct OpSnapshot {
    pub name: String,
    pub counts: Counts,
    /// Response time from the intended start (coordinated-omission corrected), microseconds.
    pub response_time: Histogram<u64>,
    /// Service time from the actual send, microseconds.
    pub service_time: Histogram<u64>,
    /// Dispatch lag (actual send − intended start), microseconds.
    pub lag: Histogram<u64>,
    /// The most recent completed request's trace (for exemplars).
    pub last_trace: Option<TraceRef>,
    /// Where the time of a request went (connect, TLS handshake, first byte, receive).
    pub phases: Phases,
}

/// Per-phase histograms, microseconds. `connect` and `tls` are recorded once per new
/// connection (by the request that opened it); `ttfb` (write start → first response byte) and
/// `receive` (first byte → last byte) per response. The target's name is resolved once per
/// run, before the load, so there is no per-request DNS phase.
#[derive(Debug, Clone)]
pub struct Phases {
    pub connect: Histogram<u64>,
    pub tls: Histogram<u64>,
    pub ttfb: Histogram<u64>,
    pub receive: Histogram<u64>,
}

impl Default for Phases {
    fn default() -> Self {
        Phases {
            connect: super::new_histogram(),
            tls: super::new_histogram(),
            ttfb: super::new_histogram(),
            receive: super::new_histogram(),
        }
    }
}

impl Phases {
    pub fn all(&self) -> [(&'static str, &Histogram<u64>); 4] {
        [
            ("connect", &self.connect),
            ("tls", &self.tls),
            ("ttfb", &self.ttfb),
            ("receive", &self.receive),
        ]
    }
    /// Adds `other` (same bounds on both sides, so `add` cannot fail).
    pub fn add(&mut self, other: &Phases) {
        let _ = self.connect.add(&other.connect);
        let _ = self.tls.add(&other.tls);
        let _ = self.ttfb.add(&other.ttfb);
        let _ = self.receive.add(&other.receive);
    }
    pub fn reset(&mut self) {
        self.connect.reset();
        self.tls.reset();
        self.ttfb.reset();
        self.receive.reset();
    }
}

/// The merged state at one interval tick (and at the end).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Since the start of the load.
    pub elapsed: Duration,
    /// One entry per `plan.mix.operations`, same order.
    pub ops: Vec<OpSnapshot>,
    /// Planned arrival rate now (open model; closed model: the cap or 0), per second.
    pub target_rate: f64,
    /// Completed requests per second over the last interval.
    pub achieved_rate: f64,
    pub in_flight: u64,
    /// Active virtual users (closed model; 0 for open).
    pub vus: u64,
    /// Indexes into `plan.faults` of the windows active now.
    pub active_faults: Vec<usize>,
    /// Bounded lists (`plan.output.keep_traces` each), slowest first / most recent first.
    pub slowest: Vec<TraceRef>,
    pub failed: Vec<TraceRef>,
    pub faulted: Vec<TraceRef>,
    /// Requests faulted with headers, by index into `plan.faults` (credited when the request
    /// is recorded; a shorter vector means 0 for the windows beyond it).
    pub fault_injected: Vec<u64>,
    /// True once the load has ended (the final snapshot).
    pub finished: bool,
    /// Flow steps' own figures: (index of the flow in `ops`, the step, named as in the plan),
    /// in `Mix::flow_steps` order. A flow's entry in `ops` counts whole flows (one request per
    /// flow; response time = the flow's duration); its steps' requests are here.
    pub steps: Vec<(usize, OpSnapshot)>,
}

impl Snapshot {
    /// Counts summed over all operations.
    pub fn totals(&self) -> Counts {
        let mut t = Counts::default();
        for op in &self.ops {
            t.add(&op.counts);
        }
        t
    }
}

impl Counts {
    /// Adds every counter of `other` into `self` (worker merge, totals, report merge, windows).
    pub fn add(&mut self, other: &Counts) {
        self.requests += other.requests;
        for i in 0..5 {
            self.status_class[i] += other.status_class[i];
        }
        for &(code, n) in &other.status {
            match self.status.binary_search_by_key(&code, |&(k, _)| k) {
                Ok(i) => self.status[i].1 += n,
                Err(i) => self.status.insert(i, (code, n)),
            }
        }
        for i in 0..ErrorKind::COUNT {
            self.errors[i] += other.errors[i];
        }
        self.retries += other.retries;
        self.panics += other.panics;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.dropped += other.dropped;
        self.late += other.late;
        self.empty_pool += other.empty_pool;
        self.checks_passed += other.checks_passed;
        self.checks_failed += other.checks_failed;
        self.faults_latency += other.faults_latency;
        self.faults_error += other.faults_error;
        self.planned += other.planned;
        self.completed += other.completed;
        self.abandoned += other.abandoned;
        self.behind += other.behind;
    }
}

/// A finished request handed from the executor to the client-span exporter over a bounded
/// channel (`try_send`; refused, never awaited, when the exporter lags, and then its trace id
/// is not shown). The exporter turns it into an OTLP span of kind CLIENT named `{method}`,
/// with this trace and span id, so that Tempo shows trafficgen → todo-api as one trace.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub op: std::sync::Arc<str>,
    pub method: &'static str,
    /// Full URL of the request (`http://127.0.0.1:port/api/todos/3`).
    pub url: String,
    pub status: Option<u16>,
    pub error: Option<ErrorKind>,
    /// Wall-clock time of the actual send.
    pub start: std::time::SystemTime,
    /// Service time (send → last byte).
    pub duration: Duration,
    /// "latency" | "error" when the generator faulted this request with headers.
    pub fault: Option<&'static str>,
}
