//! Verdict: thresholds evaluated against the recorded data (whole run and sliding windows),
//! live during the run (for `abort_on_fail`) and finally on the report.
//!
//! (CONTRACT: signatures below. OWNER: report helper.)

use crate::plan::Plan;
use crate::recorder::Snapshot;
use crate::report::{Report, ThresholdResult};

/// Per-tick state of the thresholds: windowed thresholds keep a ring of per-second histograms
/// (bounded by the window length) and remember the worst window seen.
#[derive(Debug)]
pub struct Live {}

impl Live {
    pub fn new(_plan: &Plan) -> Self {
        todo!("report helper")
    }
    /// Feed the interval snapshot; returns `Some(reason)` when an `abort_on_fail` threshold
    /// has failed (after its `delay_abort_eval`) and the run must stop.
    pub fn observe(&mut self, _snapshot: &Snapshot) -> Option<String> {
        todo!("report helper")
    }
}

/// Evaluates every threshold of the plan on the final report (windowed ones from `live`).
pub fn evaluate(_plan: &Plan, _report: &Report, _live: &Live) -> Vec<ThresholdResult> {
    todo!("report helper")
}
