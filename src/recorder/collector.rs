//! The collector: merges the workers' recorder deltas (and the later intervals a late flush
//! carries) into cumulative figures, and makes the snapshots the run loop hands to the sinks.
//! Off the hot path: it runs on the run loop's task, once per delta and per interval.

use std::time::Duration;

use super::*;

/// Merges worker deltas into cumulative figures and produces snapshots.
#[derive(Debug)]
pub struct Collector {
    names: Vec<String>,
    ops: Vec<OpRecorder>,
    /// Flow steps: (operation index, step name) and their cumulative figures.
    step_names: Vec<(usize, String)>,
    steps: Vec<OpRecorder>,
    traces: TraceLists,
    windows: Vec<u64>,
    gauges: Vec<(u64, u64)>,
    last_requests: u64,
    last_elapsed: Duration,
}

impl Collector {
    pub fn new(names: Vec<String>, workers: usize, keep: usize) -> Self {
        let ops = (0..names.len()).map(|_| OpRecorder::new()).collect();
        Collector {
            names,
            ops,
            step_names: Vec::new(),
            steps: Vec::new(),
            traces: TraceLists::new(keep),
            windows: Vec::new(),
            gauges: vec![(0, 0); workers],
            last_requests: 0,
            last_elapsed: Duration::ZERO,
        }
    }

    /// Keeps flow steps' figures apart (`Mix::flow_steps`).
    pub fn with_steps(mut self, steps: Vec<(usize, String)>) -> Self {
        self.steps = steps.iter().map(|_| OpRecorder::new()).collect();
        self.step_names = steps;
        self
    }

    /// Adds a worker's delta; the caller may reuse `d` after `d.reset()`.
    /// Adds a worker's delta (and the parts of it that belong to later intervals: the run
    /// loop hands those over once their interval is due); the caller may reuse `d` after
    /// `d.reset()`.
    pub fn absorb(&mut self, d: &WorkerRecorder) {
        self.absorb_one(d);
        for l in &d.later {
            self.absorb_one(l);
        }
    }

    fn absorb_one(&mut self, d: &WorkerRecorder) {
        for (acc, o) in self.steps.iter_mut().zip(&d.steps) {
            acc.counts.add(&o.counts);
            let _ = acc.response_time.add(&o.response_time);
            let _ = acc.service_time.add(&o.service_time);
            let _ = acc.lag.add(&o.lag);
            acc.phases.add(&o.phases);
            if o.last.is_some() {
                acc.last = o.last;
            }
        }
        for (acc, o) in self.ops.iter_mut().zip(&d.ops) {
            acc.counts.add(&o.counts);
            // Same bounds on both sides, so `add` cannot fail.
            let _ = acc.response_time.add(&o.response_time);
            let _ = acc.service_time.add(&o.service_time);
            let _ = acc.lag.add(&o.lag);
            acc.phases.add(&o.phases);
            if o.last.is_some() {
                acc.last = o.last;
            }
        }
        self.traces.absorb(&d.traces);
        if self.windows.len() < d.windows.len() {
            self.windows.resize(d.windows.len(), 0);
        }
        for (acc, n) in self.windows.iter_mut().zip(&d.windows) {
            *acc += n;
        }
        if let Some(g) = self.gauges.get_mut(d.worker) {
            *g = if d.finished {
                (0, 0)
            } else {
                (d.in_flight, d.vus)
            };
        }
    }

    pub fn total_requests(&self) -> u64 {
        self.ops.iter().map(|o| o.counts.requests).sum()
    }

    /// The cumulative snapshot at `elapsed`. `achieved_rate` covers the time since the previous
    /// call.
    pub fn snapshot(
        &mut self,
        elapsed: Duration,
        target_rate: f64,
        active_faults: Vec<usize>,
        finished: bool,
    ) -> Snapshot {
        let total = self.total_requests();
        let dt = elapsed.saturating_sub(self.last_elapsed).as_secs_f64();
        let achieved_rate = if dt > 0.0 {
            (total - self.last_requests) as f64 / dt
        } else {
            0.0
        };
        self.last_requests = total;
        self.last_elapsed = elapsed;
        let names = &self.names;
        Snapshot {
            elapsed,
            ops: self
                .ops
                .iter()
                .zip(names)
                .map(|(o, name)| o.snapshot(name, names))
                .collect(),
            target_rate,
            achieved_rate,
            in_flight: self.gauges.iter().map(|g| g.0).sum(),
            vus: self.gauges.iter().map(|g| g.1).sum(),
            active_faults,
            slowest: self
                .traces
                .slowest
                .iter()
                .map(|t| t.to_ref(names))
                .collect(),
            failed: self.traces.failed.iter().map(|t| t.to_ref(names)).collect(),
            faulted: self
                .traces
                .faulted
                .iter()
                .map(|t| t.to_ref(names))
                .collect(),
            fault_injected: self.windows.clone(),
            finished,
            steps: self
                .steps
                .iter()
                .zip(&self.step_names)
                .map(|(o, (op, name))| (*op, o.snapshot(name, names)))
                .collect(),
        }
    }
}
