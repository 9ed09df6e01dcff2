//! `report merge`: the reports of the N segments of one distributed run → one exact result.
//! Counters are summed and histograms added bucket by bucket, so every percentile of the merge
//! is the percentile of the whole load. Thresholds are evaluated again on the merged data.

use std::collections::BTreeMap;

use super::{
    OpReport, Report, ReportConfig, ReportError, ThresholdResult, ThresholdSpec, TimelinePoint,
    hist,
};
use crate::plan::{Segment, Threshold};
use crate::recorder::{Counts, TraceRef};
use crate::verdict::{self, eval};

fn check_segments(reports: &[Report]) -> Result<(), ReportError> {
    let first = reports
        .first()
        .ok_or_else(|| ReportError::Merge("no reports given".into()))?;
    let n = first.segment.count;
    let mut seen = vec![false; n as usize];
    for r in reports {
        if r.scenario != first.scenario {
            return Err(ReportError::Merge(format!(
                "reports of different scenarios: `{}` and `{}`",
                first.scenario, r.scenario
            )));
        }
        if r.segment.count != n {
            return Err(ReportError::Merge(format!(
                "segment {}/{} does not belong with segment {}/{}",
                r.segment.index, r.segment.count, first.segment.index, n
            )));
        }
        let i = r.segment.index as usize;
        if i >= seen.len() {
            return Err(ReportError::Merge(format!(
                "segment index {i} out of range 0..{n}"
            )));
        }
        if std::mem::replace(&mut seen[i], true) {
            return Err(ReportError::Merge(format!("segment {i}/{n} given twice")));
        }
    }
    let missing: Vec<String> = (0..n as usize)
        .filter(|&i| !seen[i])
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(ReportError::Merge(format!(
            "segments {} of {n} are missing (give all N reports)",
            missing.join(", ")
        )));
    }
    Ok(())
}

fn merge_ops(parts: &[&OpReport], duration_s: f64) -> Result<OpReport, ReportError> {
    let mut counts = Counts::default();
    let (mut r, mut s, mut l) = (hist::empty(), hist::empty(), hist::empty());
    for p in parts {
        counts.add(&p.counts);
        let (pr, ps, pl) = p.decode_histograms().map_err(ReportError::Merge)?;
        hist::add(&mut r, &pr);
        hist::add(&mut s, &ps);
        hist::add(&mut l, &pl);
    }
    Ok(OpReport::from_parts(counts, &r, &s, &l, duration_s))
}

/// Per-second sums. Percentiles of a second cannot be added: the merge keeps the highest of the
/// segments' (a conservative view; the exact whole-run percentiles are in `ops`/`totals`).
fn merge_timelines(reports: &[Report]) -> Vec<TimelinePoint> {
    let mut by_t: BTreeMap<u64, TimelinePoint> = BTreeMap::new();
    for r in reports {
        for p in &r.timeline {
            let m = by_t.entry(p.t).or_insert_with(|| TimelinePoint {
                t: p.t,
                ..Default::default()
            });
            m.target_rate += p.target_rate;
            m.requests += p.requests;
            m.errors += p.errors;
            m.dropped += p.dropped;
            m.p50_ms = m.p50_ms.max(p.p50_ms);
            m.p99_ms = m.p99_ms.max(p.p99_ms);
            m.in_flight += p.in_flight;
            m.vus += p.vus;
            for &f in &p.faults {
                if !m.faults.contains(&f) {
                    m.faults.push(f);
                }
            }
            m.faults.sort_unstable();
        }
    }
    by_t.into_values().collect()
}

fn merge_traces(lists: impl Iterator<Item = Vec<TraceRef>>, by_time: bool) -> Vec<TraceRef> {
    let mut keep = 0;
    let mut all = Vec::new();
    for l in lists {
        keep = keep.max(l.len());
        all.extend(l);
    }
    if by_time {
        all.sort_by(|a, b| b.at_ms.total_cmp(&a.at_ms));
    } else {
        all.sort_by(|a, b| b.response_time_ms.total_cmp(&a.response_time_ms));
    }
    all.truncate(keep);
    all
}

/// Windowed count/rate thresholds over all operations, from the merged per-second timeline.
fn timeline_window(t: &Threshold, merged: &Report) -> Option<ThresholdResult> {
    let w = t.window?.as_secs();
    if eval::is_latency(t.metric)
        || t.op.is_some()
        || matches!(t.metric, crate::plan::ThresholdMetric::Checks)
        || w == 0
    {
        return None;
    }
    let pts = &merged.timeline;
    let mut worst: Option<(f64, u64)> = None;
    let mut windows = 0;
    let empty = hist::empty();
    for end in pts.iter().filter(|p| p.t >= w) {
        let mut c = Counts::default();
        for p in pts.iter().filter(|p| p.t + w > end.t && p.t <= end.t) {
            c.requests += p.requests;
            c.errors[0] += p.errors;
            c.dropped += p.dropped;
        }
        windows += 1;
        let sample = eval::Sample {
            counts: &c,
            response: &empty,
            service: &empty,
            lag: &empty,
            secs: w as f64,
        };
        if let Ok(v) = eval::observe(t, &sample)
            && worst.is_none_or(|(b, _)| eval::worse(t.comparison, t.value, v, b))
        {
            worst = Some((v, end.t));
        }
    }
    if windows == 0 {
        return None;
    }
    Some(match worst {
        Some((v, end)) => eval::judge(t, Ok(v), &format!(" in the window ending at {end}s")),
        None => eval::judge(t, Err(format!("no samples in any {w}s window")), ""),
    })
}

/// A threshold the merged data cannot evaluate exactly (window percentiles, per-op windows):
/// the worst of the segments' results.
fn worst_of_segments(
    source: &str,
    spec: Option<&ThresholdSpec>,
    reports: &[Report],
) -> ThresholdResult {
    let results: Vec<&ThresholdResult> = reports
        .iter()
        .flat_map(|r| r.thresholds.iter().filter(|t| t.source == source))
        .collect();
    let passed = results.iter().all(|t| t.passed);
    let parsed = spec.and_then(eval::from_spec);
    let mut observed = None;
    for r in &results {
        let (Some(v), Some(t)) = (r.observed, &parsed) else {
            continue;
        };
        if observed.is_none_or(|o| eval::worse(t.comparison, t.value, v, o)) {
            observed = Some(v);
        }
    }
    let failing: Vec<&str> = results
        .iter()
        .filter(|t| !t.passed)
        .map(|t| t.message.as_str())
        .collect();
    ThresholdResult {
        source: source.to_string(),
        passed: passed && !results.is_empty(),
        observed,
        message: format!(
            "worst of the {} segments (not exactly mergeable){}{}",
            results.len(),
            if failing.is_empty() { "" } else { ": " },
            failing.join("; ")
        ),
    }
}

/// Merges the reports of the N segments of one distributed run into one exact result
/// (counters summed, histograms added, percentiles recomputed, timelines added per second).
pub fn merge(reports: &[Report]) -> Result<Report, ReportError> {
    check_segments(reports)?;
    let mut sorted: Vec<&Report> = reports.iter().collect();
    sorted.sort_by_key(|r| r.segment.index);
    let first = sorted[0];
    let duration_s = reports.iter().map(|r| r.duration_s).fold(0.0, f64::max);

    let mut names: Vec<String> = Vec::new();
    for r in &sorted {
        for (n, _) in &r.ops {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    let mut ops = Vec::with_capacity(names.len());
    for n in names {
        let parts: Vec<&OpReport> = sorted
            .iter()
            .filter_map(|r| r.ops.iter().find(|(o, _)| *o == n).map(|(_, x)| x))
            .collect();
        let merged = merge_ops(&parts, duration_s)?;
        ops.push((n, merged));
    }
    let totals_parts: Vec<&OpReport> = sorted.iter().map(|r| &r.totals).collect();
    let totals = merge_ops(&totals_parts, duration_s)?;

    let mut faults = sorted
        .iter()
        .map(|r| r.faults.clone())
        .max_by_key(|f| f.len())
        .unwrap_or_default();
    for (i, f) in faults.iter_mut().enumerate() {
        if f.injected.is_some() {
            f.injected = Some(
                sorted
                    .iter()
                    .filter_map(|r| r.faults.get(i)?.injected)
                    .sum(),
            );
        }
        f.end_s = sorted
            .iter()
            .filter_map(|r| r.faults.get(i).map(|x| x.end_s))
            .fold(f.end_s, f64::max);
    }
    let run_ids: Vec<&str> = {
        let mut v: Vec<&str> = sorted.iter().map(|r| r.run_id.as_str()).collect();
        v.dedup();
        v
    };
    let header = crate::faults::ByKind {
        latency: totals.counts.faults_latency,
        error: totals.counts.faults_error,
    };
    let mut merged = Report {
        version: super::VERSION,
        run_id: run_ids.join(","),
        scenario: first.scenario.clone(),
        source: first.source.clone(),
        target_url: first.target_url.clone(),
        started_at: sorted
            .iter()
            .map(|r| r.started_at.clone())
            .min()
            .unwrap_or_default(),
        ended_at: sorted
            .iter()
            .map(|r| r.ended_at.clone())
            .max()
            .unwrap_or_default(),
        duration_s,
        interrupted: sorted.iter().any(|r| r.interrupted),
        aborted: sorted.iter().find_map(|r| r.aborted.clone()),
        segment: Segment::WHOLE,
        totals,
        ops,
        timeline: merge_timelines(reports),
        faults,
        // Every segment read the same target's counter over about the same time: one reading
        // (the first segment's) against the merged header faults.
        target_faults: sorted
            .iter()
            .find_map(|r| r.target_faults.clone())
            .map(|t| crate::faults::TargetFaults {
                server: crate::faults::ByKind {
                    latency: t.counted.latency.saturating_sub(header.latency),
                    error: t.counted.error.saturating_sub(header.error),
                },
                header,
                ..t
            }),
        slowest: merge_traces(sorted.iter().map(|r| r.slowest.clone()), false),
        failed: merge_traces(sorted.iter().map(|r| r.failed.clone()), true),
        faulted: merge_traces(sorted.iter().map(|r| r.faulted.clone()), true),
        thresholds: Vec::new(),
        verify: sorted.iter().flat_map(|r| r.verify.clone()).collect(),
        passed: true,
        config: ReportConfig {
            grafana_url: sorted.iter().find_map(|r| r.config.grafana_url.clone()),
            thresholds: Vec::new(),
        },
    };

    // Every threshold of any segment, in first-seen order: parsed ones from the config, and
    // results without a parsed form (older writers) by their source only.
    let mut specs: Vec<ThresholdSpec> = Vec::new();
    for r in &sorted {
        for s in &r.config.thresholds {
            if !specs.iter().any(|x| x.source == s.source) {
                specs.push(s.clone());
            }
        }
    }
    let mut unparsed: Vec<String> = Vec::new();
    for r in &sorted {
        for t in &r.thresholds {
            if !specs.iter().any(|x| x.source == t.source) && !unparsed.contains(&t.source) {
                unparsed.push(t.source.clone());
            }
        }
    }
    let mut results: Vec<ThresholdResult> = specs
        .iter()
        .map(|spec| {
            let Some(t) = eval::from_spec(spec) else {
                return worst_of_segments(&spec.source, Some(spec), reports);
            };
            if t.window.is_none() {
                return verdict::whole_run(&t, &merged, "");
            }
            timeline_window(&t, &merged)
                .unwrap_or_else(|| worst_of_segments(&spec.source, Some(spec), reports))
        })
        .collect();
    results.extend(unparsed.iter().map(|s| worst_of_segments(s, None, reports)));
    merged.config.thresholds = specs;
    merged.set_thresholds(results);
    Ok(merged)
}
