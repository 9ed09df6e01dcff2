//! `report merge`: the reports of the N segments of one distributed run → one exact result.
//! Counters are summed and histograms added bucket by bucket, so every percentile of the merge
//! is the percentile of the whole load. Data only: the verdict stage evaluates the thresholds
//! again on the merged result (`verdict::judge_merged`).

use std::collections::BTreeMap;

use super::{OpReport, Report, ReportConfig, ReportError, TimelinePoint, VerdictRecord, hist};
use crate::plan::Segment;
use crate::recorder::{Counts, TraceRef};

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
    let mut phases = crate::recorder::Phases::default();
    for p in parts {
        counts.add(&p.counts);
        let (pr, ps, pl) = p.decode_histograms().map_err(ReportError::Merge)?;
        hist::add(&mut r, &pr);
        hist::add(&mut s, &ps);
        hist::add(&mut l, &pl);
        let pp = p.decode_phases().map_err(ReportError::Merge)?;
        for (into, from) in [
            (&mut phases.connect, &pp.connect),
            (&mut phases.tls, &pp.tls),
            (&mut phases.ttfb, &pp.ttfb),
            (&mut phases.receive, &pp.receive),
        ] {
            hist::add(into, from);
        }
    }
    let mut op = OpReport::from_parts(counts, &r, &s, &l, duration_s);
    op.set_phases(&phases);
    Ok(op)
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
            m.p95_ms = m.p95_ms.max(p.p95_ms);
            m.service_p50_ms = m.service_p50_ms.max(p.service_p50_ms);
            m.service_p95_ms = m.service_p95_ms.max(p.service_p95_ms);
            m.service_p99_ms = m.service_p99_ms.max(p.service_p99_ms);
            m.lag_p99_ms = m.lag_p99_ms.max(p.lag_p99_ms);
            m.lag_max_ms = m.lag_max_ms.max(p.lag_max_ms);
            for (into, e) in m.errors_by_kind.iter_mut().zip(p.errors_by_kind) {
                *into += e;
            }
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
        passed: false,
        verdict: VerdictRecord::default(),
        config: ReportConfig {
            grafana_url: sorted.iter().find_map(|r| r.config.grafana_url.clone()),
            thresholds: Vec::new(),
            compare: first.config.compare.clone(),
        },
        // Each segment's control actions (each has its own dashboard), in time order.
        control: {
            let mut c: Vec<_> = sorted.iter().flat_map(|r| r.control.clone()).collect();
            c.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
            c
        },
    };

    // Every threshold line of any segment, in first-seen order.
    for r in &sorted {
        for line in &r.config.thresholds {
            if !merged.config.thresholds.contains(line) {
                merged.config.thresholds.push(line.clone());
            }
        }
    }
    Ok(merged)
}
