//! Verdict: thresholds evaluated against the recorded data (whole run and sliding windows),
//! live during the run (for `abort_on_fail`) and finally on the report.
//!
//! `eval.rs` evaluates one threshold on one set of data; `window.rs` holds the live state
//! (sliding windows, abort). A threshold whose metric got no samples fails, with a message
//! saying so, never passes silently.

use crate::plan::{Plan, Threshold};
use crate::report::{Report, ThresholdResult};

pub mod compare;
pub mod eval;
mod judge;
mod merged;
mod window;

pub use judge::{RunEnd, Verdict};
pub use merged::{judge_merged, merge_reports};
pub use window::Live;

/// Evaluates every threshold of the plan on the final report (windowed ones from `live`).
pub fn evaluate(plan: &Plan, report: &Report, live: &Live) -> Vec<ThresholdResult> {
    plan.thresholds
        .iter()
        .enumerate()
        .map(|(i, t)| {
            // `live` was built from the same plan; match by index, fall back to the source.
            let state = live
                .thresholds
                .get(i)
                .filter(|lt| lt.source == t.source)
                .and_then(|_| live.windows[i].as_ref())
                .or_else(|| {
                    live.thresholds
                        .iter()
                        .position(|lt| lt.source == t.source)
                        .and_then(|j| live.windows[j].as_ref())
                });
            match (t.window, state) {
                (Some(w), Some(state)) => windowed(t, w, state, report),
                _ => whole_run(t, report, ""),
            }
        })
        .collect()
}

fn windowed(
    t: &Threshold,
    w: std::time::Duration,
    state: &window::WindowState,
    report: &Report,
) -> ThresholdResult {
    let ws = w.as_secs_f64();
    if state.windows == 0 {
        return whole_run(
            t,
            report,
            &format!(" (the run was shorter than the {ws}s window: evaluated over the whole run)"),
        );
    }
    match state.worst {
        Some(worst) => {
            let ctx = format!(
                " in the window {:.1}s–{:.1}s",
                worst.start.as_secs_f64(),
                worst.end.as_secs_f64()
            );
            let mut r = eval::judge(t, Ok(worst.value), &ctx);
            r.window = Some([worst.start.as_secs_f64(), worst.end.as_secs_f64()]);
            r
        }
        None => eval::judge(
            t,
            Err(format!(
                "no samples: metric `{}` recorded nothing in any of the {} windows of {ws}s",
                t.metric.as_str(),
                state.windows
            )),
            "",
        ),
    }
}

/// A threshold over the whole run, from the report's counts and histograms.
pub fn whole_run(t: &Threshold, report: &Report, context: &str) -> ThresholdResult {
    let op = match &t.op {
        None => Some(&report.totals),
        Some(name) => report.ops.iter().find(|(n, _)| n == name).map(|(_, r)| r),
    };
    let Some(op) = op else {
        let msg = format!(
            "no samples: no operation named `{}` in this run",
            t.op.as_deref().unwrap_or_default()
        );
        return eval::judge(t, Err(msg), context);
    };
    let observed = match op.decode_histograms() {
        Err(e) => Err(format!("unreadable histogram in the report: {e}")),
        Ok((r, s, l)) => eval::observe(
            t,
            &eval::Sample {
                counts: &op.counts,
                response: &r,
                service: &s,
                lag: &l,
                secs: report.duration_s,
            },
        ),
    };
    eval::judge(t, observed, context)
}
