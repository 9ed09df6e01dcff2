//! Building the report: the per-second timeline (deltas of cumulative interval snapshots) and
//! `Report::build` from the final snapshot.

use hdrhistogram::Histogram;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{
    FaultReport, Histograms, OpReport, PhaseHistograms, PhasePercentiles, Report, RunMeta,
    Timeline, TimelinePoint, VERSION, hist,
};
use crate::plan::{FaultKind, FaultVia, Plan};
use crate::recorder::{Counts, Phases, Snapshot};

/// What the timeline remembers between ticks: the cumulative state of the last tick and the
/// part of the current second not yet emitted. Bounded: one histogram, a few counters.
#[derive(Debug, Default)]
pub(crate) struct TimelineAcc {
    /// Cumulative totals and response/service/lag histograms (all operations) at the last
    /// emitted point.
    prev_counts: Counts,
    prev_hist: Option<HistogramSet>,
    /// Header-injected requests of each plan fault window (cumulative).
    injected: Vec<u64>,
    /// Windows active during the not yet emitted second.
    pending_faults: Vec<usize>,
    last_target_rate: f64,
}

/// Response, service and lag histograms summed over all operations.
fn histogram_totals(snapshot: &Snapshot) -> HistogramSet {
    let (mut r, mut s, mut l) = (hist::empty(), hist::empty(), hist::empty());
    for op in &snapshot.ops {
        hist::add(&mut r, &op.response_time);
        hist::add(&mut s, &op.service_time);
        hist::add(&mut l, &op.lag);
    }
    (r, s, l)
}

/// The value at quantile `q` in ms, 0 for an empty histogram.
fn q_ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        hist::ms(h.value_at_quantile(q))
    }
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
        let now_hist = histogram_totals(snapshot);
        let (second, service, lag) = match &self.acc.prev_hist {
            Some((pr, ps, pl)) => (
                hist::delta(&now_hist.0, pr),
                hist::delta(&now_hist.1, ps),
                hist::delta(&now_hist.2, pl),
            ),
            None => now_hist.clone(),
        };
        let prev = &self.acc.prev_counts;
        let mut errors_by_kind = [0u64; crate::recorder::ErrorKind::COUNT];
        for (i, e) in errors_by_kind.iter_mut().enumerate() {
            *e = now.errors[i].saturating_sub(prev.errors[i]);
        }
        let errors = errors_by_kind.iter().sum();
        let mut faults = std::mem::take(&mut self.acc.pending_faults);
        faults.sort_unstable();
        self.points.push(TimelinePoint {
            t,
            target_rate: snapshot.target_rate,
            requests: now.requests.saturating_sub(prev.requests),
            errors,
            dropped: now.dropped.saturating_sub(prev.dropped),
            p50_ms: q_ms(&second, 0.5),
            p99_ms: q_ms(&second, 0.99),
            in_flight: snapshot.in_flight,
            vus: snapshot.vus,
            faults,
            p95_ms: q_ms(&second, 0.95),
            service_p50_ms: q_ms(&service, 0.5),
            service_p95_ms: q_ms(&service, 0.95),
            service_p99_ms: q_ms(&service, 0.99),
            lag_p99_ms: q_ms(&lag, 0.99),
            lag_max_ms: if lag.is_empty() {
                0.0
            } else {
                hist::ms(lag.max())
            },
            errors_by_kind,
            planned: now.planned.saturating_sub(prev.planned),
            abandoned: now.abandoned.saturating_sub(prev.abandoned),
        });
        self.acc.prev_counts = now;
        self.acc.prev_hist = Some(now_hist);
    }

    /// Ends the timeline with the final snapshot and puts it into the report: the points (naming
    /// only windows the report lists) and the header-injected count of each fault window.
    pub fn apply(mut self, last: &Snapshot, report: &mut Report) {
        self.finish(last);
        let listed = report.faults.len();
        for p in &mut self.points {
            p.faults.retain(|&i| i < listed);
        }
        for (f, n) in report.faults.iter_mut().zip(&self.acc.injected) {
            if f.injected.is_some() {
                f.injected = Some(*n);
            }
        }
        report.timeline = self.points;
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
            phases_ms: Default::default(),
            histograms: Histograms {
                response_time: hist::encode(response),
                service_time: hist::encode(service),
                lag: hist::encode(lag),
                phases: Default::default(),
            },
            steps: Vec::new(),
        }
    }

    /// Sets the per-phase figures from their histograms.
    pub fn set_phases(&mut self, p: &Phases) {
        self.phases_ms = PhasePercentiles {
            connect: hist::percentiles(&p.connect),
            tls: hist::percentiles(&p.tls),
            ttfb: hist::percentiles(&p.ttfb),
            receive: hist::percentiles(&p.receive),
        };
        self.histograms.phases = PhaseHistograms {
            connect: hist::encode(&p.connect),
            tls: hist::encode(&p.tls),
            ttfb: hist::encode(&p.ttfb),
            receive: hist::encode(&p.receive),
        };
    }

    /// The per-phase histograms decoded (empty for a report written before them).
    pub fn decode_phases(&self) -> Result<Phases, String> {
        let h = &self.histograms.phases;
        let d = |s: &str| {
            if s.is_empty() {
                Ok(hist::empty())
            } else {
                hist::decode(s)
            }
        };
        Ok(Phases {
            connect: d(&h.connect)?,
            tls: d(&h.tls)?,
            ttfb: d(&h.ttfb)?,
            receive: d(&h.receive)?,
        })
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
    /// The report of a finished (or interrupted) run, not judged yet: thresholds, assertions
    /// and the verdict are set later by the verdict stage.
    /// The timeline comes from the run's timeline sink afterwards (`Timeline::apply`).
    pub fn build(plan: &Plan, last: &Snapshot, meta: RunMeta) -> Report {
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
        // Rates are per second of real time, drain included (the arrivals completed in it
        // belong to the load); the planned duration would overstate them.
        let elapsed_s = last.elapsed.as_secs_f64();
        let rate_s = if elapsed_s > 0.0 {
            elapsed_s
        } else {
            duration_s
        };
        let (mut all_r, mut all_s, mut all_l) = (hist::empty(), hist::empty(), hist::empty());
        let mut all_p = Phases::default();
        let mut ops = Vec::with_capacity(last.ops.len());
        for op in &last.ops {
            all_p.add(&op.phases);
            hist::add(&mut all_r, &op.response_time);
            hist::add(&mut all_s, &op.service_time);
            hist::add(&mut all_l, &op.lag);
            let mut r = OpReport::from_parts(
                op.counts.clone(),
                &op.response_time,
                &op.service_time,
                &op.lag,
                rate_s,
            );
            r.set_phases(&op.phases);
            ops.push((op.name.clone(), r));
        }
        for (i, step) in &last.steps {
            let mut r = OpReport::from_parts(
                step.counts.clone(),
                &step.response_time,
                &step.service_time,
                &step.lag,
                rate_s,
            );
            r.set_phases(&step.phases);
            if let Some((_, flow)) = ops.get_mut(*i) {
                flow.steps.push((step.name.clone(), r));
            }
        }
        let mut totals = OpReport::from_parts(last.totals(), &all_r, &all_s, &all_l, rate_s);
        totals.set_phases(&all_p);
        let faults = fault_reports(plan, duration_s);
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
            timeline: Vec::new(),
            faults,
            target_faults: None,
            slowest: last.slowest.clone(),
            failed: last.failed.clone(),
            faulted: last.faulted.clone(),
            thresholds: Vec::new(),
            verify: Vec::new(),
            passed: false,
            verdict: super::VerdictRecord::default(),
            config: super::ReportConfig {
                grafana_url: plan.verify.as_ref().and_then(|v| v.grafana_url.clone()),
                thresholds: plan.thresholds.iter().map(|t| t.source.clone()).collect(),
                compare: plan.compare.iter().map(|c| c.source.clone()).collect(),
                seed: Some(plan.seed),
                fingerprint: Some(plan.fingerprint()),
                merged_segments: None,
                allow_schedule_miss: plan.schedule.allow_miss,
            },
            cleanup: None,
            elapsed_s,
            schedule_missed: None,
            control: Vec::new(),
        }
    }

    /// Stores the threshold results (the verdict is set separately, from all results).
    pub fn set_thresholds(&mut self, results: Vec<super::ThresholdResult>) {
        self.thresholds = results;
    }

    /// Stores the observability assertion results.
    pub fn set_verify(&mut self, results: Vec<super::AssertionResult>) {
        self.verify = results;
    }

    /// Stores the verdict record; `passed` follows it.
    pub fn set_verdict(&mut self, record: super::VerdictRecord) {
        self.passed = record.state.is_pass();
        self.verdict = record;
    }
}

/// The plan's fault windows that started before the load ended (windows are in start order, so
/// the indexes stay those of the plan), their end clamped to the end of the load.
fn fault_reports(plan: &Plan, duration_s: f64) -> Vec<FaultReport> {
    plan.faults
        .iter()
        .take_while(|f| f.start.as_secs_f64() < duration_s)
        .map(|f| {
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
                    FaultVia::Header => Some(0),
                    FaultVia::Server => None,
                },
                failed: None,
            }
        })
        .collect()
}
