//! Building the report: the per-second timeline (deltas of cumulative interval snapshots) and
//! `Report::build` from the final snapshot.

use hdrhistogram::Histogram;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{
    FaultReport, Histograms, OpReport, Report, RunMeta, Timeline, TimelinePoint, VERSION, hist,
};
use crate::plan::{FaultKind, FaultVia, Plan};
use crate::recorder::{Counts, Snapshot};

/// What the timeline remembers between ticks: the cumulative state of the last tick and the
/// part of the current second not yet emitted. Bounded: one histogram, a few counters.
#[derive(Debug, Default)]
pub(crate) struct TimelineAcc {
    /// Cumulative totals and response-time histogram (all operations) at the last emitted point.
    prev_counts: Counts,
    prev_hist: Option<Histogram<u64>>,
    /// Header-injected requests of each plan fault window (cumulative).
    injected: Vec<u64>,
    /// Windows active during the not yet emitted second.
    pending_faults: Vec<usize>,
    last_target_rate: f64,
}

fn response_total(snapshot: &Snapshot) -> Histogram<u64> {
    let mut h = hist::empty();
    for op in &snapshot.ops {
        hist::add(&mut h, &op.response_time);
    }
    h
}

impl Timeline {
    pub fn new(plan: &crate::plan::Plan) -> Self {
        let injected = vec![0; plan.faults.len()];
        Timeline {
            points: Vec::new(),
            acc: TimelineAcc {
                injected,
                ..TimelineAcc::default()
            },
        }
    }

    /// Called at every interval tick with the merged snapshot. Emits one point each time the
    /// load crosses a whole second (ticks faster than 1/s are folded into their second).
    pub fn observe(&mut self, snapshot: &Snapshot) {
        self.attribute_faults(snapshot);
        for &i in &snapshot.active_faults {
            if !self.acc.pending_faults.contains(&i) {
                self.acc.pending_faults.push(i);
            }
        }
        self.acc.last_target_rate = snapshot.target_rate;
        let second = snapshot.elapsed.as_secs();
        let last_t = self.points.last().map_or(0, |p| p.t);
        if second > last_t {
            self.emit(snapshot, second);
        }
    }

    /// The generator's own fault injections per window: credited to their window when each
    /// request was recorded (the snapshot's exact cumulative counts), so the last second and
    /// requests in flight at a window's end count too.
    fn attribute_faults(&mut self, snapshot: &Snapshot) {
        for (i, n) in self.acc.injected.iter_mut().enumerate() {
            *n = snapshot.fault_injected.get(i).copied().unwrap_or(0).max(*n);
        }
    }

    fn emit(&mut self, snapshot: &Snapshot, t: u64) {
        let now = snapshot.totals();
        let now_hist = response_total(snapshot);
        let second = match &self.acc.prev_hist {
            Some(prev) => hist::delta(&now_hist, prev),
            None => now_hist.clone(),
        };
        let prev = &self.acc.prev_counts;
        let errors = now
            .errors
            .iter()
            .sum::<u64>()
            .saturating_sub(prev.errors.iter().sum::<u64>());
        let mut faults = std::mem::take(&mut self.acc.pending_faults);
        faults.sort_unstable();
        let (p50_ms, p99_ms) = if second.is_empty() {
            (0.0, 0.0)
        } else {
            (
                hist::ms(second.value_at_quantile(0.5)),
                hist::ms(second.value_at_quantile(0.99)),
            )
        };
        self.points.push(TimelinePoint {
            t,
            target_rate: snapshot.target_rate,
            requests: now.requests.saturating_sub(prev.requests),
            errors,
            dropped: now.dropped.saturating_sub(prev.dropped),
            p50_ms,
            p99_ms,
            in_flight: snapshot.in_flight,
            vus: snapshot.vus,
            faults,
        });
        self.acc.prev_counts = now;
        self.acc.prev_hist = Some(now_hist);
    }

    /// Emits the trailing partial second of the final snapshot, if it holds anything new.
    fn finish(&mut self, last: &Snapshot) {
        self.attribute_faults(last);
        let totals = last.totals();
        let seen = last.elapsed.as_secs_f64();
        let last_t = self.points.last().map_or(0, |p| p.t);
        let news = totals != self.acc.prev_counts || !self.acc.pending_faults.is_empty();
        if (seen > last_t as f64 && news) || self.points.is_empty() && seen > 0.0 {
            let t = (seen.ceil() as u64).max(last_t + 1);
            self.emit(last, t);
        }
    }
}

fn rfc3339(t: std::time::SystemTime) -> String {
    OffsetDateTime::from(t)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Response time, service time and lag histograms (µs), in that order.
pub type HistogramSet = (Histogram<u64>, Histogram<u64>, Histogram<u64>);

impl OpReport {
    /// Counts + histograms → the derived figures (rate, percentiles, V2 strings).
    pub fn from_parts(
        counts: Counts,
        response: &Histogram<u64>,
        service: &Histogram<u64>,
        lag: &Histogram<u64>,
        duration_s: f64,
    ) -> OpReport {
        let rate = if duration_s > 0.0 {
            counts.requests as f64 / duration_s
        } else {
            0.0
        };
        OpReport {
            counts,
            rate,
            response_time_ms: hist::percentiles(response),
            service_time_ms: hist::percentiles(service),
            lag_ms: hist::percentiles(lag),
            histograms: Histograms {
                response_time: hist::encode(response),
                service_time: hist::encode(service),
                lag: hist::encode(lag),
            },
        }
    }

    /// The three histograms decoded.
    pub fn decode_histograms(&self) -> Result<HistogramSet, String> {
        Ok((
            hist::decode(&self.histograms.response_time)?,
            hist::decode(&self.histograms.service_time)?,
            hist::decode(&self.histograms.lag)?,
        ))
    }
}

impl Report {
    /// The report of a finished (or interrupted) run, thresholds not yet evaluated (`passed`
    /// is true until `set_thresholds` / `set_verify` say otherwise).
    pub fn build(plan: &Plan, last: &Snapshot, mut timeline: Timeline, meta: RunMeta) -> Report {
        timeline.finish(last);
        // The load's duration: the final snapshot comes after the drain, which is not load, and
        // rates over the planned duration make the N segments' rates add up exactly.
        let planned = plan.load.duration();
        // A run that was not stopped early did the whole planned load (its last arrival may
        // complete a little before the planned end).
        let stopped_early = meta.interrupted || meta.aborted.is_some();
        let duration_s = if planned.is_zero() || (stopped_early && last.elapsed < planned) {
            last.elapsed.as_secs_f64()
        } else {
            planned.as_secs_f64()
        };
        let (mut all_r, mut all_s, mut all_l) = (hist::empty(), hist::empty(), hist::empty());
        let mut ops = Vec::with_capacity(last.ops.len());
        for op in &last.ops {
            hist::add(&mut all_r, &op.response_time);
            hist::add(&mut all_s, &op.service_time);
            hist::add(&mut all_l, &op.lag);
            let r = OpReport::from_parts(
                op.counts.clone(),
                &op.response_time,
                &op.service_time,
                &op.lag,
                duration_s,
            );
            ops.push((op.name.clone(), r));
        }
        let totals = OpReport::from_parts(last.totals(), &all_r, &all_s, &all_l, duration_s);
        let faults = fault_reports(plan, duration_s, &timeline.acc.injected);
        // Timeline points may only name windows that the report lists.
        for p in &mut timeline.points {
            p.faults.retain(|&i| i < faults.len());
        }
        Report {
            version: VERSION,
            run_id: meta.run_id,
            scenario: plan.name.clone(),
            source: plan.source.as_ref().map(|p| p.display().to_string()),
            target_url: meta.target_url,
            started_at: rfc3339(meta.started_at),
            ended_at: rfc3339(meta.ended_at),
            duration_s,
            interrupted: meta.interrupted,
            aborted: meta.aborted,
            segment: plan.segment,
            totals,
            ops,
            timeline: timeline.points,
            faults,
            target_faults: None,
            slowest: last.slowest.clone(),
            failed: last.failed.clone(),
            faulted: last.faulted.clone(),
            thresholds: Vec::new(),
            verify: Vec::new(),
            passed: true,
            config: super::ReportConfig {
                grafana_url: plan.verify.as_ref().and_then(|v| v.grafana_url.clone()),
                thresholds: plan
                    .thresholds
                    .iter()
                    .map(crate::verdict::eval::spec)
                    .collect(),
            },
        }
    }

    /// Stores the threshold results and recomputes `passed`.
    pub fn set_thresholds(&mut self, results: Vec<super::ThresholdResult>) {
        self.thresholds = results;
        self.recompute_passed();
    }

    /// Stores the observability assertion results and recomputes `passed`.
    pub fn set_verify(&mut self, results: Vec<super::AssertionResult>) {
        self.verify = results;
        self.recompute_passed();
    }

    /// `passed` = every threshold and every assertion passed.
    pub fn recompute_passed(&mut self) {
        self.passed =
            self.thresholds.iter().all(|t| t.passed) && self.verify.iter().all(|a| !a.failed());
    }

    /// Any threshold failed (exit 99).
    pub fn thresholds_failed(&self) -> bool {
        self.thresholds.iter().any(|t| !t.passed)
    }
}

/// The plan's fault windows that started before the load ended (windows are in start order, so
/// the indexes stay those of the plan), their end clamped to the end of the load.
fn fault_reports(plan: &Plan, duration_s: f64, injected: &[u64]) -> Vec<FaultReport> {
    plan.faults
        .iter()
        .enumerate()
        .take_while(|(_, f)| f.start.as_secs_f64() < duration_s)
        .map(|(i, f)| {
            let start_s = f.start.as_secs_f64();
            let (kind, route) = match &f.kind {
                FaultKind::Latency { .. } => ("latency", f.route.clone()),
                FaultKind::Error { .. } => ("error", f.route.clone()),
            };
            FaultReport {
                start_s,
                end_s: (start_s + f.duration.as_secs_f64()).min(duration_s),
                kind: kind.to_string(),
                via: match f.via {
                    FaultVia::Header => "header".to_string(),
                    FaultVia::Server => "server".to_string(),
                },
                ops: f.ops.clone(),
                route,
                share: f.share,
                injected: match f.via {
                    FaultVia::Header => Some(injected.get(i).copied().unwrap_or(0)),
                    FaultVia::Server => None,
                },
            }
        })
        .collect()
}
