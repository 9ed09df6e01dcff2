//! The generator's own telemetry (`telemetry::Telemetry`: /metrics, pushes, OTLP) as a sink.

use super::{Control, Event, Finish, Sink};
use crate::recorder::Snapshot;
use crate::report::Report;
use crate::telemetry::Telemetry;

pub struct TelemetrySink {
    telemetry: Option<Telemetry>,
}

impl TelemetrySink {
    pub fn new(telemetry: Telemetry) -> Self {
        TelemetrySink {
            telemetry: Some(telemetry),
        }
    }
}

impl Sink for TelemetrySink {
    fn on_interval(&mut self, snapshot: &Snapshot, _: &mut Control) {
        if let Some(t) = &mut self.telemetry {
            t.observe(snapshot);
        }
    }

    fn on_event(&mut self, event: &Event) {
        if let (Some(t), Event::Control(e)) = (&mut self.telemetry, event) {
            t.control_action(e);
        }
    }

    fn before_verify(&mut self, report: &Report) {
        if let Some(t) = &mut self.telemetry {
            t.publish_report(report);
        }
    }

    fn finish<'a>(&'a mut self, report: &'a Report) -> Finish<'a> {
        let telemetry = self.telemetry.take();
        Box::pin(async move {
            match telemetry {
                Some(t) => t
                    .finish(report)
                    .await
                    .into_iter()
                    .map(|m| format!("telemetry: {m}"))
                    .collect(),
                None => Vec::new(),
            }
        })
    }
}
