//! Threshold evaluation as a sink: live during the run (sliding windows, `abort_on_fail` asks
//! the run to stop) and once at the end, on the report (`complete` stores the results).

use super::{Control, Sink};
use crate::plan::Plan;
use crate::recorder::Snapshot;
use crate::report::Report;
use crate::verdict::{self, Live};

pub struct Thresholds {
    plan: Plan,
    live: Live,
}

impl Thresholds {
    pub fn new(plan: &Plan) -> Self {
        Thresholds {
            plan: plan.clone(),
            live: Live::new(plan),
        }
    }
}

impl Sink for Thresholds {
    fn on_interval(&mut self, snapshot: &Snapshot, control: &mut Control) {
        if let Some(reason) = self.live.observe(snapshot)
            && !snapshot.finished
        {
            control.abort(reason);
        }
    }

    fn complete(&mut self, report: &mut Report) {
        report.set_thresholds(verdict::evaluate(&self.plan, report, &self.live));
    }
}
