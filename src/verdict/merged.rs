//! Thresholds of a merged report (`report merge`): each saved `key: expression` line is parsed
//! again with the plan's parser and evaluated on the merged data. Whole-run thresholds and
//! windowed count/rate thresholds over all operations are exact; what the merged data cannot
//! evaluate exactly (windowed percentiles, per-operation windows) is the worst of the segments.

use super::eval;
use crate::plan::{Threshold, threshold};
use crate::recorder::Counts;
use crate::report::{Report, ThresholdResult, hist};

/// Windowed count/rate thresholds over all operations, from the merged per-second timeline.
fn timeline_window(t: &Threshold, merged: &Report) -> Option<ThresholdResult> {
    let w = t.window?.as_secs();
    if t.metric.is_time()
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
            c.abandoned += p.abandoned;
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
    parsed: Option<&Threshold>,
    reports: &[Report],
) -> ThresholdResult {
    let results: Vec<&ThresholdResult> = reports
        .iter()
        .flat_map(|r| r.thresholds.iter().filter(|t| t.source == source))
        .collect();
    let passed = results.iter().all(|t| t.passed);
    let mut observed = None;
    for r in &results {
        let (Some(v), Some(t)) = (r.observed, parsed) else {
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
        window: None,
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

/// Evaluates the thresholds of `merged` (the output of `report::merge(reports)`) again and
/// stores the results.
pub fn judge_merged(merged: &mut Report, reports: &[Report]) {
    let mut results: Vec<ThresholdResult> = merged
        .config
        .thresholds
        .iter()
        .map(|line| {
            let Ok(t) = threshold::parse_line(line) else {
                return worst_of_segments(line, None, reports);
            };
            if t.window.is_none() {
                return super::whole_run(&t, merged, "");
            }
            timeline_window(&t, merged)
                .unwrap_or_else(|| worst_of_segments(line, Some(&t), reports))
        })
        .collect();
    // Results whose line no segment saved (written by an older trafficgen): by source only.
    let mut unparsed: Vec<String> = Vec::new();
    for r in reports {
        for t in &r.thresholds {
            if !merged.config.thresholds.contains(&t.source) && !unparsed.contains(&t.source) {
                unparsed.push(t.source.clone());
            }
        }
    }
    results.extend(unparsed.iter().map(|s| worst_of_segments(s, None, reports)));
    merged.set_thresholds(results);
}

/// `report merge` as a whole: the merged data (`report::merge`), its thresholds evaluated again
/// and its verdict set.
pub fn merge_reports(reports: &[Report]) -> Result<Report, crate::report::ReportError> {
    let mut merged = crate::report::merge(reports)?;
    judge_merged(&mut merged, reports);
    super::Verdict::of_report(&merged).apply(&mut merged);
    Ok(merged)
}
