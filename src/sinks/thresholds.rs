//! Threshold evaluation as a sink: live during the run (sliding windows, `abort_on_fail` asks
//! the run to stop — never in a segment of a distributed run, whose share proves nothing about
//! the whole load) and once at the end, on the report (`complete` stores the results).

use super::{Control, Sink};
use crate::plan::Plan;
use crate::recorder::Snapshot;
use crate::report::Report;
use crate::verdict::{self, Live};

pub struct Thresholds {
    plan: Plan,
    live: Live,
    /// Whether a failing `abort_on_fail` threshold may stop this process's load: not in a
    /// segment of a distributed run, whose 1/N share proves nothing about the whole load.
    may_abort: bool,
}

impl Thresholds {
    pub fn new(plan: &Plan) -> Self {
        Thresholds {
            plan: plan.clone(),
            live: Live::new(plan),
            may_abort: plan.segment.count <= 1,
        }
    }
}

impl Sink for Thresholds {
    fn on_interval(&mut self, snapshot: &Snapshot, control: &mut Control) {
        if let Some(reason) = self.live.observe(snapshot)
            && !snapshot.finished
            && self.may_abort
        {
            control.abort(reason);
        }
    }

    fn complete(&mut self, report: &mut Report) {
        report.set_thresholds(verdict::evaluate(&self.plan, report, &self.live));
    }
}
