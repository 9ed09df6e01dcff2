//! The end-of-run outputs a process leaves where they outlive it: the compact summary file
//! (`--summary-file`, at most 4 KiB so that it fits a Kubernetes termination message) and the
//! report as one log line (`--report-log`). Written last, on every exit path of a run.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::report::Report;

/// A Kubernetes termination message is cut at 4096 bytes.
pub const MAX_BYTES: usize = 4096;
/// The prefix of the report's log line, for `sed -n 's/^trafficgen-report: //p'`.
pub const REPORT_LINE_PREFIX: &str = "trafficgen-report: ";

#[derive(Debug, Serialize)]
struct Compact {
    /// `single`, `coordinator` (its figures are the merged run's) or `segment`.
    role: &'static str,
    segment: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scenario: Option<String>,
    /// The verdict state of what this process judged (for a segment: of its own share, which
    /// decides nothing; its `exit_code` is what the process exits with).
    state: String,
    exit_code: u8,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    totals: Option<Totals>,
    thresholds: Vec<Threshold>,
    /// Thresholds left out so that the summary fits in 4 KiB (the report has them all).
    thresholds_omitted: usize,
}

#[derive(Debug, Serialize)]
struct Totals {
    duration_s: f64,
    requests: u64,
    errors: u64,
    dropped: u64,
    late: u64,
    rate: f64,
    p99_ms: f64,
}

#[derive(Debug, Serialize)]
struct Threshold {
    source: String,
    passed: bool,
    observed: Option<f64>,
}

/// At most `max` bytes of `s`, cut at a character boundary (an ellipsis says it was cut).
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// What the summary says about how the process ended.
pub struct Ending<'a> {
    pub role: &'static str,
    pub segment: crate::plan::Segment,
    pub state: &'a str,
    pub exit_code: u8,
    pub message: &'a str,
}

/// The compact JSON summary, never longer than `MAX_BYTES`: messages and threshold lines are
/// shortened, then thresholds left out (counted in `thresholds_omitted`) until it fits.
pub fn compact(ending: &Ending<'_>, report: Option<&Report>) -> String {
    let mut c = Compact {
        role: ending.role,
        segment: format!("{}/{}", ending.segment.index, ending.segment.count),
        run_id: report.map(|r| cut(&r.run_id, 200)),
        scenario: report.map(|r| cut(&r.scenario, 200)),
        state: ending.state.to_string(),
        exit_code: ending.exit_code,
        message: cut(ending.message, 1024),
        totals: report.map(|r| Totals {
            duration_s: r.duration_s,
            requests: r.totals.counts.requests,
            errors: r.totals.counts.errors.iter().sum(),
            dropped: r.totals.counts.dropped,
            late: r.totals.counts.late,
            rate: r.totals.rate,
            p99_ms: r.totals.response_time_ms.p99,
        }),
        thresholds: report
            .map(|r| {
                r.thresholds
                    .iter()
                    .map(|t| Threshold {
                        source: cut(&t.source, 200),
                        passed: t.passed,
                        observed: t.observed.filter(|v| v.is_finite()),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        thresholds_omitted: 0,
    };
    // Failing thresholds first, so that the ones left out are passing ones.
    c.thresholds.sort_by_key(|t| t.passed);
    loop {
        let json = serde_json::to_string(&c).unwrap_or_default();
        if json.len() <= MAX_BYTES {
            return json;
        }
        if c.thresholds.pop().is_some() {
            c.thresholds_omitted += 1;
        } else {
            c.message = cut(&c.message, c.message.len() / 2);
        }
    }
}

/// Writes the summary file. A failure is reported on stderr only: it must not change the
/// verdict of a run that already has one.
pub fn write_file(path: &Path, ending: &Ending<'_>, report: Option<&Report>) {
    let json = compact(ending, report);
    if let Err(e) = std::fs::write(path, json.as_bytes()) {
        eprintln!(
            "trafficgen: the summary file {} was not written: {e}",
            path.display()
        );
    }
}

/// The report as one line on `out`.
pub fn write_report_line(out: &mut dyn Write, report: &Report) {
    match serde_json::to_string(report) {
        Ok(json) => {
            let _ = writeln!(out, "{REPORT_LINE_PREFIX}{json}");
            let _ = out.flush();
        }
        Err(e) => eprintln!("trafficgen: the report line was not written: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_respects_characters_and_limits() {
        assert_eq!(cut("abc", 10), "abc");
        let s = "é".repeat(100);
        let c = cut(&s, 51);
        assert!(c.len() <= 51 && c.ends_with("..."), "{c}");
    }

    #[test]
    fn summary_without_report_is_small_and_valid_json() {
        let long = "x".repeat(10_000);
        let e = Ending {
            role: "single",
            segment: crate::plan::Segment::WHOLE,
            state: "generator_failed",
            exit_code: 1,
            message: &long,
        };
        let json = compact(&e, None);
        assert!(json.len() <= MAX_BYTES);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["exit_code"], 1);
    }
}
