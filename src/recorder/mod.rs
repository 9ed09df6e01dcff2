//! Recorder: per-worker HdrHistograms and counters, merged off the hot path into a `Snapshot`.
//!
//! A worker thread owns one `WorkerRecorder` (no lock, no channel per request). Every interval it
//! hands its delta to the `Collector` over a channel (one message per worker per interval) and
//! continues with an emptied recorder that the collector sends back for reuse, so memory stays
//! flat for a run of any length. Trace ids are kept compactly (`RawTrace`, `Copy`) in bounded
//! lists and only turned into strings when a snapshot is taken.
//!
//! Trace ids shown to a person (the report's slowest/failed/faulted lists, exemplars) belong to
//! exported traces only: `record_traced` decides which requests the run wants to show, asks the
//! caller to export their client span, and keeps the id only when the export was accepted.
//! Header faults are credited to their window when the request is recorded (exact counts per
//! window, whatever the tick timing).

use hdrhistogram::Histogram;

mod accounting;
mod collector;
pub mod interval;
pub mod snapshot;
mod traces;

pub use collector::Collector;
pub use snapshot::{Counts, ErrorKind, OpSnapshot, Phases, Snapshot, SpanRecord, TraceRef};
pub use traces::{RawTrace, TraceLists, hex};

/// Histogram bounds, microseconds: 1 µs .. 5 min, 3 significant digits. Larger values saturate.
pub const HIST_MAX_US: u64 = 300_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("static histogram bounds are valid")
}

/// Dispatcher lateness (release − intended start, µs) beyond which an arrival counts as
/// `behind`: 10 ms is ten times the timer's granularity, so only a generator that cannot keep
/// up (CPU starved, a release loop falling behind) gets there.
pub const BEHIND_US: u64 = 10_000;

/// What one finished request contributes.
#[derive(Debug, Clone, Copy)]
pub struct RequestRecord {
    pub op: usize,
    pub status: Option<u16>,
    pub error: Option<ErrorKind>,
    /// Response time from the intended start; None when no response came (connect/io errors).
    pub rt_us: Option<u64>,
    pub st_us: Option<u64>,
    pub lag_us: u64,
    pub late: bool,
    pub fault: Option<&'static str>,
    /// Index into `plan.faults` of the header window that faulted this request.
    pub fault_window: Option<usize>,
    pub trace_id: [u8; 16],
    pub at_us: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Phase durations of this request, microseconds (None: not part of it).
    pub connect_us: Option<u64>,
    pub tls_us: Option<u64>,
    pub ttfb_us: Option<u64>,
    pub receive_us: Option<u64>,
}

impl RequestRecord {
    /// An arrival of `op` that ended in `error` without a request on the wire (one that could
    /// not be built, a panic): no status, no times, no trace id. `at_us` as in `at_us`.
    pub fn unsent(op: usize, error: ErrorKind, at_us: u64) -> RequestRecord {
        RequestRecord {
            op,
            status: None,
            error: Some(error),
            rt_us: None,
            st_us: None,
            lag_us: 0,
            late: false,
            fault: None,
            fault_window: None,
            trace_id: [0; 16],
            at_us,
            bytes_sent: 0,
            bytes_received: 0,
            connect_us: None,
            tls_us: None,
            ttfb_us: None,
            receive_us: None,
        }
    }
}

#[cfg(test)]
impl RequestRecord {
    /// A 200 of operation 0 that took `rt_us` (service time the same) and started `at_us`
    /// after the start of the load: the request the timeline tests count.
    pub fn ok_for_tests(rt_us: u64, at_us: u64) -> RequestRecord {
        RequestRecord {
            status: Some(200),
            error: None,
            rt_us: Some(rt_us),
            st_us: Some(rt_us),
            trace_id: [1; 16],
            ..RequestRecord::unsent(0, ErrorKind::Io, at_us)
        }
    }
}

/// One operation's delta in a worker.
#[derive(Debug, Clone)]
pub struct OpRecorder {
    pub counts: Counts,
    pub response_time: Histogram<u64>,
    pub service_time: Histogram<u64>,
    pub lag: Histogram<u64>,
    pub phases: Phases,
    pub last: Option<RawTrace>,
}

impl OpRecorder {
    /// Its figures as the operation (or flow step) `name` shows them; `names` name the
    /// operation of its last trace.
    fn snapshot(&self, name: &str, names: &[String]) -> OpSnapshot {
        OpSnapshot {
            name: name.to_string(),
            counts: self.counts.clone(),
            response_time: self.response_time.clone(),
            service_time: self.service_time.clone(),
            lag: self.lag.clone(),
            last_trace: self.last.map(|t| t.to_ref(names)),
            phases: self.phases.clone(),
        }
    }
    fn new() -> Self {
        OpRecorder {
            counts: Counts::default(),
            response_time: new_histogram(),
            service_time: new_histogram(),
            lag: new_histogram(),
            phases: Phases::default(),
            last: None,
        }
    }
    /// Counts one request into these figures (counters, histograms, phases).
    fn count(&mut self, o: &RequestRecord) {
        let op = self;
        let c = &mut op.counts;
        c.requests += 1;
        if let Some(code) = o.status {
            let class = (code / 100).clamp(1, 5) as usize - 1;
            c.status_class[class] += 1;
            match c.status.binary_search_by_key(&code, |&(k, _)| k) {
                Ok(i) => c.status[i].1 += 1,
                Err(i) => c.status.insert(i, (code, 1)),
            }
        }
        if let Some(e) = o.error {
            c.errors[e.index()] += 1;
        }
        if o.late {
            c.late += 1;
        }
        c.bytes_sent = c.bytes_sent.saturating_add(o.bytes_sent);
        c.bytes_received = c.bytes_received.saturating_add(o.bytes_received);
        if o.error == Some(ErrorKind::Panic) {
            c.panics += 1;
        }
        match o.fault {
            Some("error") => c.faults_error += 1,
            Some(_) => c.faults_latency += 1,
            None => {}
        }
        if let Some(rt) = o.rt_us {
            op.response_time.saturating_record(rt);
        }
        if let Some(st) = o.st_us {
            op.service_time.saturating_record(st);
        }
        op.lag.saturating_record(o.lag_us);
        let ph = &mut op.phases;
        for (h, v) in [
            (&mut ph.connect, o.connect_us),
            (&mut ph.tls, o.tls_us),
            (&mut ph.ttfb, o.ttfb_us),
            (&mut ph.receive, o.receive_us),
        ] {
            if let Some(v) = v {
                h.saturating_record(v);
            }
        }
    }
    fn reset(&mut self) {
        self.counts = Counts::default();
        self.response_time.reset();
        self.service_time.reset();
        self.lag.reset();
        self.phases.reset();
        self.last = None;
    }
}

/// A worker's figures since its last flush, plus its gauges.
#[derive(Debug, Clone)]
pub struct WorkerRecorder {
    pub worker: usize,
    pub ops: Vec<OpRecorder>,
    pub traces: TraceLists,
    /// Requests faulted with headers, by plan fault window index (delta).
    pub windows: Vec<u64>,
    /// Gauges (current values, not deltas).
    pub in_flight: u64,
    pub vus: u64,
    /// Set on the worker's last delta.
    pub finished: bool,
    /// Flow steps' own figures, by index in `Mix::flow_steps` (grown on first use).
    pub steps: Vec<OpRecorder>,
    /// Which interval the requests of this delta ended in (see `interval.rs`).
    pub span: interval::Span,
    /// Requests that ended after `span` (a late flush), by interval: `later[i]` is interval
    /// `span.index + 1 + i`.
    pub later: Vec<WorkerRecorder>,
}

impl WorkerRecorder {
    pub fn new(worker: usize, ops: usize, keep: usize) -> Self {
        WorkerRecorder {
            worker,
            ops: (0..ops).map(|_| OpRecorder::new()).collect(),
            traces: TraceLists::new(keep),
            windows: Vec::new(),
            in_flight: 0,
            vus: 0,
            finished: false,
            steps: Vec::new(),
            span: interval::Span::default(),
            later: Vec::new(),
        }
    }

    /// Zeroes the deltas (not the gauges) for reuse.
    pub fn reset(&mut self) {
        for o in &mut self.ops {
            o.reset();
        }
        self.traces.clear();
        self.windows.iter_mut().for_each(|n| *n = 0);
        self.finished = false;
        self.later.clear();
        for s in &mut self.steps {
            s.reset();
        }
    }

    /// Records a request whose trace is known to be exported (tests, replays): counts it and
    /// offers its id to the trace lists and the exemplar.
    pub fn record(&mut self, o: &RequestRecord) {
        self.record_traced(o, true, || true);
    }

    /// Records a finished (or failed) request. Its trace id is shown (trace lists, exemplar)
    /// only if `export` accepted its client span; `export` is called when `sampled` (the
    /// `trace_sample_ratio` draw) or when the id would be shown: a failure or a fault while
    /// this interval's lists have room, a candidate for the slowest, the first request of the
    /// operation in this interval (its exemplar). Allocation-free except the first time a
    /// status code or a fault window is seen.
    pub fn record_traced(
        &mut self,
        o: &RequestRecord,
        sampled: bool,
        export: impl FnOnce() -> bool,
    ) {
        if let Some(later) = self.later_for(o) {
            later.record_traced(o, sampled, export);
            return;
        }
        self.count_window(o.fault_window);
        let Some(op) = self.ops.get_mut(o.op) else {
            return;
        };
        op.count(o);
        let raw = RawTrace::of(o);
        // A zero trace id: nothing was sent (a refused step, a panic), nothing to point at.
        let wanted = sampled || op.last.is_none() || self.traces.would_keep(&raw);
        if o.trace_id != [0; 16] && wanted && export() {
            op.last = Some(raw);
            self.traces.offer(raw);
        }
    }

    /// Records one request of a flow step (`step` indexes `Mix::flow_steps`; `o.op` is the
    /// flow). The step's figures get the request; the flow's own record (one per flow, made by
    /// the caller when the flow ends) gets its duration and outcome, so here the flow only
    /// gets what is exact per request: header faults, and the trace id (lists, exemplar).
    pub fn record_step(
        &mut self,
        step: usize,
        o: &RequestRecord,
        sampled: bool,
        export: impl FnOnce() -> bool,
    ) {
        if let Some(later) = self.later_for(o) {
            later.record_step(step, o, sampled, export);
            return;
        }
        self.count_window(o.fault_window);
        if self.steps.len() <= step {
            self.steps.resize_with(step + 1, OpRecorder::new);
        }
        self.steps[step].count(o);
        let Some(op) = self.ops.get_mut(o.op) else {
            return;
        };
        match o.fault {
            Some("error") => op.counts.faults_error += 1,
            Some(_) => op.counts.faults_latency += 1,
            None => {}
        }
        let raw = RawTrace::of(o);
        let wanted = sampled || op.last.is_none() || self.traces.would_keep(&raw);
        if o.trace_id != [0; 16] && wanted && export() {
            op.last = Some(raw);
            self.steps[step].last = Some(raw);
            self.traces.offer(raw);
        }
    }

    /// A request sent inside header-fault window `w`.
    fn count_window(&mut self, w: Option<usize>) {
        if let Some(w) = w {
            if self.windows.len() <= w {
                self.windows.resize(w + 1, 0);
            }
            self.windows[w] += 1;
        }
    }

    pub fn dropped(&mut self, op: usize) {
        if let Some(o) = self.ops.get_mut(op) {
            o.counts.dropped += 1;
        }
    }
    /// An automatic resend of an idempotent request (see `Counts::retries`).
    pub fn retry(&mut self, op: usize) {
        if let Some(o) = self.ops.get_mut(op) {
            o.counts.retries += 1;
        }
    }
    /// A panic outside any one request (a whole connection task or worker), charged to `op`.
    pub fn task_panic(&mut self, op: usize) {
        if let Some(o) = self.ops.get_mut(op) {
            o.counts.panics += 1;
        }
    }
    pub fn empty_pool(&mut self, op: usize) {
        if let Some(o) = self.ops.get_mut(op) {
            o.counts.empty_pool += 1;
        }
    }
    pub fn checks(&mut self, op: usize, passed: u64, failed: u64) {
        if let Some(o) = self.ops.get_mut(op) {
            o.counts.checks_passed += passed;
            o.counts.checks_failed += failed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn out(op: usize, status: Option<u16>, rt: u64) -> RequestRecord {
        let error = match status {
            Some(s) if s >= 500 => Some(ErrorKind::Status5xx),
            Some(s) if s >= 400 => Some(ErrorKind::Status4xx),
            Some(_) => None,
            None => Some(ErrorKind::Connect),
        };
        RequestRecord {
            op,
            status,
            error,
            rt_us: status.map(|_| rt),
            st_us: status.map(|_| rt),
            lag_us: 0,
            late: false,
            fault: None,
            fault_window: None,
            trace_id: [rt as u8 + 1; 16],
            at_us: 0,
            bytes_sent: 10,
            bytes_received: 20,
            connect_us: None,
            tls_us: None,
            ttfb_us: status.map(|_| rt / 2),
            receive_us: status.map(|_| rt / 2),
        }
    }

    #[test]
    fn flow_steps_are_counted_apart_from_their_flow() {
        let mut c = Collector::new(vec!["flow".into()], 1, 5)
            .with_steps(vec![(0, "create".into()), (0, "read".into())]);
        let mut w = WorkerRecorder::new(0, 1, 5);
        let mut step = out(0, Some(201), 10);
        step.fault = Some("latency");
        step.fault_window = Some(0);
        w.record_step(0, &step, true, || true);
        w.record_step(1, &out(0, Some(404), 20), true, || true);
        // The flow itself: one request, no trace id of its own.
        let mut flow = out(0, Some(404), 35);
        flow.trace_id = [0; 16];
        w.record(&flow);
        c.absorb(&w);
        let s = c.snapshot(Duration::from_secs(1), 0.0, vec![], true);
        assert_eq!(s.ops[0].counts.requests, 1, "one flow");
        assert_eq!(s.ops[0].counts.faults_latency, 1, "its step's header fault");
        assert_eq!(s.fault_injected, vec![1]);
        assert_eq!(s.steps.len(), 2);
        assert_eq!((s.steps[0].0, s.steps[0].1.name.as_str()), (0, "create"));
        assert_eq!(s.steps[0].1.counts.status, vec![(201, 1)]);
        assert_eq!(s.steps[1].1.counts.errors[ErrorKind::Status4xx.index()], 1);
        assert_eq!(s.steps[1].1.response_time.max(), 20);
        // Steps' trace ids are what the lists point at (the flow has none).
        assert_eq!(s.slowest.len(), 2);
        assert!(s.slowest.iter().all(|t| t.op == "flow"));
        // A recycled recorder starts its steps from zero.
        w.reset();
        assert!(w.steps.iter().all(|o| o.counts.requests == 0));
    }

    #[test]
    fn deltas_merge_into_cumulative_counts_and_bounded_lists() {
        let mut c = Collector::new(vec!["a".into(), "b".into()], 2, 2);
        let mut w = WorkerRecorder::new(0, 2, 2);
        for rt in [10, 50, 30] {
            w.record(&out(0, Some(200), rt));
        }
        w.record(&out(1, Some(503), 5));
        w.record(&out(1, None, 0));
        c.absorb(&w);
        w.reset();
        w.record(&out(0, Some(201), 70));
        c.absorb(&w);
        let s = c.snapshot(Duration::from_secs(1), 0.0, vec![], false);
        assert_eq!(s.ops[0].counts.requests, 4);
        assert_eq!(s.ops[0].counts.status, vec![(200, 3), (201, 1)]);
        assert_eq!(s.ops[1].counts.errors[ErrorKind::Connect.index()], 1);
        assert_eq!(s.ops[1].counts.status_class[4], 1);
        assert_eq!(
            s.slowest
                .iter()
                .map(|t| t.response_time_ms)
                .collect::<Vec<_>>(),
            vec![0.07, 0.05]
        );
        assert_eq!(s.failed.len(), 2);
        assert_eq!(s.failed[0].error, Some(ErrorKind::Connect));
        assert_eq!(s.totals().requests, 6);
        assert_eq!(
            (s.totals().bytes_sent, s.totals().bytes_received),
            (60, 120)
        );
        let mut w = WorkerRecorder::new(0, 2, 2);
        w.record(&RequestRecord {
            error: Some(ErrorKind::Panic),
            ..out(1, None, 0)
        });
        w.task_panic(0);
        w.retry(0);
        c.absorb(&w);
        let s = c.snapshot(Duration::from_secs(2), 0.0, vec![], false);
        assert_eq!(s.totals().panics, 2);
        assert_eq!(s.ops[1].counts.errors[ErrorKind::Panic.index()], 1);
        assert_eq!(s.ops[0].counts.retries, 1);
    }
}

#[cfg(test)]
mod traced_tests {
    use super::*;
    use std::time::Duration;

    fn out(status: u16, rt: u64, fault_window: Option<usize>) -> RequestRecord {
        RequestRecord {
            status: Some(status),
            error: (status >= 500).then_some(ErrorKind::Status5xx),
            fault: fault_window.map(|_| "error"),
            fault_window,
            trace_id: [(rt % 251) as u8 + 1; 16],
            ..RequestRecord::ok_for_tests(rt, 0)
        }
    }

    #[test]
    fn only_exported_ids_are_shown() {
        let mut w = WorkerRecorder::new(0, 1, 3);
        // The export queue refuses everything: counts are kept, no id is shown.
        let mut asked = 0;
        for rt in [10, 20, 30] {
            w.record_traced(&out(503, rt, None), false, || {
                asked += 1;
                false
            });
        }
        assert_eq!(
            asked, 3,
            "failures and slowest candidates are offered for export"
        );
        assert_eq!(w.ops[0].counts.requests, 3);
        assert!(w.traces.slowest.is_empty() && w.traces.failed.is_empty());
        assert!(w.ops[0].last.is_none());
        // Accepted exports are shown.
        w.record_traced(&out(200, 40, None), false, || true);
        assert_eq!(w.traces.slowest.len(), 1);
        assert_eq!(w.ops[0].last.map(|t| t.rt_us), Some(40));
    }

    #[test]
    fn unsampled_requests_nobody_is_shown_are_not_exported() {
        let mut w = WorkerRecorder::new(0, 1, 2);
        for rt in [100, 90] {
            w.record_traced(&out(200, rt, None), false, || true);
        }
        // Faster than both kept slowest, no failure, not sampled, the op has its exemplar.
        let mut asked = false;
        w.record_traced(&out(200, 5, None), false, || {
            asked = true;
            true
        });
        assert!(!asked);
        // The same request drawn by the sample ratio is exported.
        w.record_traced(&out(200, 5, None), true, || {
            asked = true;
            true
        });
        assert!(asked);
    }

    #[test]
    fn faults_are_credited_to_their_window_exactly() {
        let mut c = Collector::new(vec!["a".into()], 1, 2);
        let mut w = WorkerRecorder::new(0, 1, 2);
        for _ in 0..5 {
            w.record_traced(&out(503, 1, Some(1)), false, || false);
        }
        w.record_traced(&out(200, 1, Some(0)), false, || false);
        c.absorb(&w);
        w.reset();
        w.record_traced(&out(503, 1, Some(1)), false, || false);
        c.absorb(&w);
        let s = c.snapshot(Duration::from_secs(1), 0.0, vec![], true);
        assert_eq!(s.fault_injected, vec![1, 6]);
    }
}
