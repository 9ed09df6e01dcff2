//! Sinks: everything that consumes the run's snapshots and its final report, behind one seam.
//! The run loop (`run`) feeds every registered sink the same calls in the same order and knows
//! none of them; adding an output is one new file here and one line in `for_run`.
//!
//! Order of calls during a run, never concurrent:
//! 1. `on_interval` at every interval tick with the merged snapshot, and once more with the
//!    final snapshot (`snapshot.finished`); a sink may ask the run to stop through `Control`.
//! 2. `on_event` when something happens (a fault window opens or closes, a stop is asked for,
//!    the control API changed the load).
//! 3. `complete` once the load has ended, in registration order: the sink adds what it kept
//!    to the report (the timeline, the threshold results).
//! 4. `before_verify` with the report whose thresholds are judged, before `verify` queries the
//!    observability stack (telemetry publishes the threshold state so assertions can see it).
//! 5. `finish` once, with the judged report (verdict set), for the final outputs.
//!
//! `on_interval`, `on_event`, `complete` and `before_verify` must not block: slow work goes to
//! a task of the sink's own. Sinks never touch the workers.

use std::future::Future;
use std::pin::Pin;

use crate::plan::Plan;
use crate::recorder::Snapshot;
use crate::report::Report;

pub mod control;
mod dashboard;
mod files;
pub mod progress;
mod telemetry;
mod thresholds;
mod timeline;

pub use progress::Progress;

/// A future returned by `Sink::finish`: messages to print on stderr.
pub type Finish<'a> = Pin<Box<dyn Future<Output = Vec<String>> + 'a>>;

/// Something that happened during the run, for the sinks that show or record it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The plan's fault window with this index opened.
    FaultOpened(usize),
    /// The plan's fault window with this index closed.
    FaultClosed(usize),
    /// The plan's server-side fault window with this index could not be applied: why.
    FaultFailed(usize, String),
    /// The run was asked to stop early (signal, or a sink through `Control`): the reason.
    Stopping(String),
    /// An action of the control API was applied (a changed rate, a pause, an annotation...).
    Control(crate::report::ControlEvent),
}

/// What a sink may ask of the run from `on_interval`.
#[derive(Debug, Default)]
pub struct Control {
    stop: Option<String>,
}

impl Control {
    /// Stop the load now (e.g. an `abort_on_fail` threshold failed); the first reason wins.
    pub fn abort(&mut self, reason: String) {
        self.stop.get_or_insert(reason);
    }

    /// The reason a sink asked to stop, once.
    pub fn take_abort(&mut self) -> Option<String> {
        self.stop.take()
    }
}

pub trait Sink {
    fn on_interval(&mut self, _snapshot: &Snapshot, _control: &mut Control) {}
    fn on_event(&mut self, _event: &Event) {}
    fn complete(&mut self, _report: &mut Report) {}
    fn before_verify(&mut self, _report: &Report) {}
    fn finish<'a>(&'a mut self, _report: &'a Report) -> Finish<'a> {
        Box::pin(async { Vec::new() })
    }
    /// The control API's requests, for a sink that serves one (the dashboard); the run loop
    /// takes the receiver once before the load and applies what arrives (`run::control`).
    fn control_requests(&mut self) -> Option<tokio::sync::mpsc::Receiver<control::Request>> {
        None
    }
}

/// The sinks of one run, in the order they are called. The threshold sink comes after the
/// timeline (thresholds read the report's data, never the timeline sink's state) and the
/// telemetry sink last (it lingers in `finish`).
pub fn for_run(plan: &Plan, mut telemetry: crate::telemetry::Telemetry) -> Vec<Box<dyn Sink>> {
    let mut sinks: Vec<Box<dyn Sink>> = vec![
        Box::new(
            Progress::new(plan.output.progress, plan.load.duration()).with_faults(&plan.faults),
        ),
        Box::new(timeline::TimelineSink::new(plan)),
        Box::new(thresholds::Thresholds::new(plan)),
        Box::new(files::ReportFiles::new(plan)),
    ];
    if let Some(addr) = plan.output.dashboard {
        match dashboard::Dashboard::start(plan, addr, plan.output.dashboard_token.clone()) {
            Ok(d) => {
                // Its control API's actions become metrics (series at 0 from the start).
                telemetry.enable_control(&control::Action::NAMES);
                sinks.push(Box::new(d));
            }
            // The run goes on without it: the dashboard is for watching, not for judging.
            Err(e) => eprintln!("trafficgen: dashboard on {addr}: {e}"),
        }
    }
    sinks.push(Box::new(telemetry::TelemetrySink::new(telemetry)));
    sinks
}
