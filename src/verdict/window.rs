//! Live threshold state: windowed thresholds over sliding windows of the interval snapshots,
//! and `abort_on_fail` checks during the run.
//!
//! Memory is bounded for a run of any length: each windowed threshold keeps one running
//! histogram and a ring of at most ~600 slices (ticks folded into slices of max(1 s, w/600)),
//! each slice stored as its recorded (value, count) buckets only. Windows slide by that step.

use std::collections::VecDeque;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::eval::{self, Sample};
use crate::plan::{Plan, Threshold, ThresholdMetric};
use crate::recorder::{Counts, Snapshot};
use crate::report::hist;

/// Counts + the three histograms of the operations a threshold selects.
pub(crate) struct Selected {
    pub counts: Counts,
    pub response: Histogram<u64>,
    pub service: Histogram<u64>,
    pub lag: Histogram<u64>,
}

/// Sums the operations named by `op` (`None` = all); `None` if no operation has that name.
pub(crate) fn select(snapshot: &Snapshot, op: Option<&str>) -> Option<Selected> {
    let mut s = Selected {
        counts: Counts::default(),
        response: hist::empty(),
        service: hist::empty(),
        lag: hist::empty(),
    };
    let mut found = false;
    for o in snapshot
        .ops
        .iter()
        .filter(|o| op.is_none_or(|n| n == o.name))
    {
        found = true;
        s.counts.add(&o.counts);
        hist::add(&mut s.response, &o.response_time);
        hist::add(&mut s.service, &o.service_time);
        hist::add(&mut s.lag, &o.lag);
    }
    found.then_some(s)
}

fn sub_counts(now: &Counts, before: &Counts) -> Counts {
    let mut d = Counts {
        requests: now.requests.saturating_sub(before.requests),
        dropped: now.dropped.saturating_sub(before.dropped),
        planned: now.planned.saturating_sub(before.planned),
        completed: now.completed.saturating_sub(before.completed),
        abandoned: now.abandoned.saturating_sub(before.abandoned),
        behind: now.behind.saturating_sub(before.behind),
        late: now.late.saturating_sub(before.late),
        empty_pool: now.empty_pool.saturating_sub(before.empty_pool),
        checks_passed: now.checks_passed.saturating_sub(before.checks_passed),
        checks_failed: now.checks_failed.saturating_sub(before.checks_failed),
        faults_latency: now.faults_latency.saturating_sub(before.faults_latency),
        faults_error: now.faults_error.saturating_sub(before.faults_error),
        ..Counts::default()
    };
    for i in 0..5 {
        d.status_class[i] = now.status_class[i].saturating_sub(before.status_class[i]);
    }
    for i in 0..d.errors.len() {
        d.errors[i] = now.errors[i].saturating_sub(before.errors[i]);
    }
    d
}

/// Sum of two sorted (value, count) bucket lists.
fn merge_buckets(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(&(va, na)), Some(&(vb, nb))) if va == vb => {
                out.push((va, na + nb));
                i += 1;
                j += 1;
            }
            (Some(&x), Some(&(vb, _))) if x.0 < vb => {
                out.push(x);
                i += 1;
            }
            (Some(&x), None) => {
                out.push(x);
                i += 1;
            }
            (_, Some(&y)) => {
                out.push(y);
                j += 1;
            }
            (None, None) => unreachable!("loop condition"),
        }
    }
    out
}

/// One slice (one or more ticks) of a window.
#[derive(Debug)]
struct Slice {
    begin: Duration,
    end: Duration,
    counts: Counts,
    /// Recorded buckets of the threshold's histogram in this tick (latency metrics only).
    values: Vec<(u64, u64)>,
}

/// The worst full window seen so far.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Worst {
    pub value: f64,
    pub start: Duration,
    pub end: Duration,
}

#[derive(Debug)]
pub(crate) struct WindowState {
    window: Duration,
    /// Granularity of the ring: max(1 s, window / 600); windows slide by this step.
    step: Duration,
    prev_counts: Counts,
    prev_hist: Histogram<u64>,
    ring: VecDeque<Slice>,
    running_counts: Counts,
    running_hist: Histogram<u64>,
    /// The window's data starts here (end of the last evicted slice).
    start: Duration,
    pub worst: Option<Worst>,
    /// Full windows evaluated (with or without samples).
    pub windows: u64,
    /// Result of the latest full window (for abort).
    pub last: Option<Result<f64, String>>,
}

fn metric_hist(t: &Threshold, s: &Selected) -> Histogram<u64> {
    match t.metric {
        ThresholdMetric::ResponseTime => s.response.clone(),
        ThresholdMetric::ServiceTime => s.service.clone(),
        ThresholdMetric::ScheduleLag => s.lag.clone(),
        _ => hist::empty(),
    }
}

impl WindowState {
    fn new(window: Duration) -> Self {
        WindowState {
            window,
            step: (window / 600).max(Duration::from_secs(1)),
            prev_counts: Counts::default(),
            prev_hist: hist::empty(),
            ring: VecDeque::new(),
            running_counts: Counts::default(),
            running_hist: hist::empty(),
            start: Duration::ZERO,
            worst: None,
            windows: 0,
            last: None,
        }
    }

    fn observe(&mut self, t: &Threshold, snapshot: &Snapshot) {
        let Some(sel) = select(snapshot, t.op.as_deref()) else {
            return;
        };
        let now_hist = metric_hist(t, &sel);
        let delta_hist = hist::delta(&now_hist, &self.prev_hist);
        let counts = sub_counts(&sel.counts, &self.prev_counts);
        self.running_counts.add(&counts);
        hist::add(&mut self.running_hist, &delta_hist);
        let values = hist::buckets(&delta_hist);
        match self.ring.back_mut() {
            // Ticks are folded into slices of at least `step`, so the ring never holds more
            // than window / step (≤ 600) slices whatever the interval.
            Some(back) if back.end.saturating_sub(back.begin) < self.step => {
                back.end = snapshot.elapsed;
                back.counts.add(&counts);
                back.values = merge_buckets(&back.values, &values);
            }
            _ => {
                let begin = self.ring.back().map_or(self.start, |b| b.end);
                self.ring.push_back(Slice {
                    begin,
                    end: snapshot.elapsed,
                    counts,
                    values,
                });
            }
        }
        self.prev_counts = sel.counts;
        self.prev_hist = now_hist;

        // Evict the slices that ended before the window now starts.
        while let Some(front) = self.ring.front() {
            if front.end + self.window > snapshot.elapsed {
                break;
            }
            let front = self.ring.pop_front().expect("front exists");
            self.running_counts = sub_counts(&self.running_counts, &front.counts);
            if !front.values.is_empty() {
                let old = hist::from_buckets(&front.values);
                self.running_hist = hist::delta(&self.running_hist, &old);
            }
            self.start = front.end;
        }
        let span = snapshot.elapsed.saturating_sub(self.start);
        if span < self.window {
            return;
        }
        self.windows += 1;
        let observed = eval::observe(
            t,
            &Sample {
                counts: &self.running_counts,
                response: &self.running_hist,
                service: &self.running_hist,
                lag: &self.running_hist,
                secs: span.as_secs_f64(),
            },
        );
        if let Ok(v) = observed {
            let replace = self
                .worst
                .is_none_or(|w| eval::worse(t.comparison, t.value, v, w.value));
            if replace {
                self.worst = Some(Worst {
                    value: v,
                    start: self.start,
                    end: snapshot.elapsed,
                });
            }
        }
        self.last = Some(observed);
    }
}

/// Per-tick state of the thresholds: windowed thresholds keep a ring of per-tick deltas
/// (bounded by the window length) and remember the worst window seen.
#[derive(Debug)]
pub struct Live {
    pub(crate) thresholds: Vec<Threshold>,
    /// Same index as `thresholds`; `Some` for windowed ones.
    pub(crate) windows: Vec<Option<WindowState>>,
}

impl Live {
    pub fn new(plan: &Plan) -> Self {
        Self::with_thresholds(plan.thresholds.clone())
    }

    pub fn with_thresholds(thresholds: Vec<Threshold>) -> Self {
        let windows = thresholds
            .iter()
            .map(|t| t.window.map(WindowState::new))
            .collect();
        Live {
            thresholds,
            windows,
        }
    }

    /// Ticks held in all windows' rings (bounded by window / interval); for tests of memory.
    pub fn retained_ticks(&self) -> usize {
        self.windows.iter().flatten().map(|w| w.ring.len()).sum()
    }

    /// The thresholds' source lines, in order.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.thresholds.iter().map(|t| t.source.as_str())
    }

    /// The latest full window of each windowed threshold that failed in it: (index into the
    /// thresholds, window start, window end). For the live dashboard's hatching.
    pub fn failing_now(&self) -> Vec<(usize, Duration, Duration)> {
        self.thresholds
            .iter()
            .zip(&self.windows)
            .enumerate()
            .filter_map(|(i, (t, w))| {
                let w = w.as_ref()?;
                let end = w.ring.back()?.end;
                match w.last {
                    Some(Ok(v)) if !t.comparison.holds(v, t.value) => Some((i, w.start, end)),
                    _ => None,
                }
            })
            .collect()
    }

    /// Feed the interval snapshot; returns `Some(reason)` when an `abort_on_fail` threshold
    /// has failed (after its `delay_abort_eval`) and the run must stop.
    pub fn observe(&mut self, snapshot: &Snapshot) -> Option<String> {
        let mut reason = None;
        for (t, w) in self.thresholds.iter().zip(self.windows.iter_mut()) {
            if let Some(w) = w {
                w.observe(t, snapshot);
            }
            if !t.abort_on_fail || snapshot.elapsed < t.delay_abort_eval || reason.is_some() {
                continue;
            }
            let observed = match w {
                Some(w) => w.last.clone(),
                None => select(snapshot, t.op.as_deref()).map(|s| {
                    eval::observe(
                        t,
                        &Sample {
                            counts: &s.counts,
                            response: &s.response,
                            service: &s.service,
                            lag: &s.lag,
                            secs: snapshot.elapsed.as_secs_f64(),
                        },
                    )
                }),
            };
            // No samples yet is not a reason to stop; the final verdict reports it.
            if let Some(Ok(v)) = observed
                && !t.comparison.holds(v, t.value)
            {
                reason = Some(format!(
                    "threshold `{}` failed at {:.1}s (observed {v:.4}); abort_on_fail",
                    t.source,
                    snapshot.elapsed.as_secs_f64()
                ));
            }
        }
        reason
    }
}
