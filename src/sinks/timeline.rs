//! The per-second timeline of the report, as a sink: it folds every interval snapshot into
//! `report::Timeline` and hands the finished timeline to the report in `complete`.

use super::{Control, Sink};
use crate::plan::Plan;
use crate::recorder::Snapshot;
use crate::report::{Report, Timeline};

pub struct TimelineSink {
    timeline: Option<Timeline>,
    last: Option<Snapshot>,
}

impl TimelineSink {
    pub fn new(plan: &Plan) -> Self {
        TimelineSink {
            timeline: Some(Timeline::new(plan)),
            last: None,
        }
    }
}

impl Sink for TimelineSink {
    fn on_interval(&mut self, snapshot: &Snapshot, _: &mut Control) {
        if snapshot.finished {
            // The final snapshot closes the timeline in `complete` (its trailing second).
            self.last = Some(snapshot.clone());
        } else if let Some(t) = &mut self.timeline {
            t.observe(snapshot);
        }
    }

    fn complete(&mut self, report: &mut Report) {
        if let (Some(t), Some(last)) = (self.timeline.take(), &self.last) {
            t.apply(last, report);
        }
    }
}
