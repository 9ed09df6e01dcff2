//! `report merge`: the reports of the N segments of one distributed run → one exact result.
//! Counters are summed and histograms added bucket by bucket, so every percentile of the merge
//! is the percentile of the whole load. Data only: the verdict stage evaluates the thresholds
//! again on the merged result (`verdict::judge_merged`).

use std::collections::BTreeMap;

use super::{OpReport, Report, ReportConfig, ReportError, TimelinePoint, VerdictRecord, hist};
use crate::plan::Segment;
use crate::recorder::{Counts, TraceRef};

/// The reports must be segments of one run: the same resolved plan (fingerprint, which
/// includes the seed) and the same run id. Reports written before fingerprints were kept are
/// compared on what they have.
fn check_same_run(reports: &[Report]) -> Result<(), ReportError> {
    let Some(first) = reports.first() else {
        return Ok(());
    };
    let seg = |r: &Report| format!("segment {}/{}", r.segment.index, r.segment.count);
    for r in &reports[1..] {
        if let (Some(a), Some(b)) = (&first.config.fingerprint, &r.config.fingerprint)
            && a != b
        {
            let seeds = match (first.config.seed, r.config.seed) {
                (Some(x), Some(y)) if x != y => format!(" (seeds {x} and {y})"),
                _ => String::new(),
            };
            return Err(ReportError::Mismatch(format!(
                "{} and {} ran different plans{seeds}: plan fingerprints {a} and {b}; every \
                 segment must run the same scenario with the same load flags and seed \
                 (`--seed`, or `--coordinator`, which hands out one)",
                seg(first),
                seg(r)
            )));
        }
        if r.run_id != first.run_id {
            return Err(ReportError::Mismatch(format!(
                "{} and {} are from different runs (run ids {} and {})",
                seg(first),
                seg(r),
                first.run_id,
                r.run_id
            )));
        }
    }
    Ok(())
}

fn check_segments(reports: &[Report]) -> Result<(), ReportError> {
    let first = reports
        .first()
        .ok_or_else(|| ReportError::Merge("no reports given".into()))?;
    let n = first.segment.count;
    // A report is input: its segment count sizes the table below.
    if n == 0 || n > crate::scenario::limits::MAX_SEGMENTS {
        return Err(ReportError::Merge(format!(
            "segment count {n} is outside 1..={}",
            crate::scenario::limits::MAX_SEGMENTS
        )));
    }
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
    check_same_run(reports)?;
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
    // Flow steps, by position (every segment ran the same plan).
    let steps = parts.iter().map(|p| p.steps.len()).max().unwrap_or(0);
    for i in 0..steps {
        let of: Vec<&OpReport> = parts
            .iter()
            .filter_map(|p| p.steps.get(i))
            .map(|s| &s.1)
            .collect();
        let name = parts
            .iter()
            .find_map(|p| p.steps.get(i))
            .map(|s| s.0.clone())
            .unwrap_or_default();
        op.steps.push((name, merge_ops(&of, duration_s)?));
    }
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
            m.planned += p.planned;
            m.abandoned += p.abandoned;
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
    // Rates per second of real time, as each segment's own (older reports: the duration).
    let elapsed_s = reports.iter().map(|r| r.elapsed_s).fold(0.0, f64::max);
    let rate_s = if elapsed_s > 0.0 {
        elapsed_s
    } else {
        duration_s
    };

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
        let merged = merge_ops(&parts, rate_s)?;
        ops.push((n, merged));
    }
    let totals_parts: Vec<&OpReport> = sorted.iter().map(|r| &r.totals).collect();
    let totals = merge_ops(&totals_parts, rate_s)?;

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
        // Segment 0 alone sets server-side rules: its failure is the window's.
        if f.failed.is_none() {
            f.failed = sorted
                .iter()
                .find_map(|r| r.faults.get(i).and_then(|x| x.failed.clone()));
        }
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
            seed: first.config.seed,
            fingerprint: first.config.fingerprint.clone(),
            merged_segments: u32::try_from(reports.len()).ok(),
            allow_schedule_miss: first.config.allow_schedule_miss,
        },
        cleanup: merge_cleanups(sorted.iter().filter_map(|r| r.cleanup.as_ref())),
        elapsed_s,
        // One segment that could not keep its schedule makes the whole run's figures suspect.
        schedule_missed: sorted.iter().find_map(|r| {
            r.schedule_missed
                .as_ref()
                .map(|m| format!("segment {}: {m}", r.segment.index))
        }),
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

/// The segments' cleanups added up (each deleted its own pool's ids, at the same time).
fn merge_cleanups<'a>(
    all: impl Iterator<Item = &'a crate::executor::Cleanup>,
) -> Option<crate::executor::Cleanup> {
    all.fold(None, |acc, c| {
        let mut m = acc.unwrap_or_default();
        m.known += c.known;
        m.deleted += c.deleted;
        m.not_found += c.not_found;
        m.failed += c.failed;
        m.left += c.left;
        m.duration_s = m.duration_s.max(c.duration_s);
        if m.first_error.is_none() {
            m.first_error.clone_from(&c.first_error);
        }
        Some(m)
    })
}
