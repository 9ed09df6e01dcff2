//! The live part of a distributed run, as two sinks. On segments ≠ 0, `Forward` sends every
//! interval's cumulative snapshot to the coordinator and stops the load when the coordinator
//! answers `stop`. On the coordinator, `Judge` adds the segments' latest snapshots to its own,
//! evaluates the plan's thresholds live on that merged view (sliding windows, `abort_on_fail`
//! across all segments) and, when one aborts — or the coordinator is stopping for any reason —
//! stops its own load and tells the segments to stop.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::client::Client;
use super::protocol::{LiveOp, LiveSnapshot};
use super::server::Handle;
use crate::plan::Plan;
use crate::plan::ThresholdMetric;
use crate::recorder::{OpSnapshot, Snapshot};
use crate::report::Report;
use crate::report::hist;
use crate::sinks::{Control, Event, Finish, Sink};
use crate::verdict::{self, Live};

/// This process's snapshot in the protocol's form.
pub fn to_live(index: u32, run_id: &str, s: &Snapshot) -> LiveSnapshot {
    LiveSnapshot {
        index,
        run_id: run_id.to_string(),
        elapsed_ms: u64::try_from(s.elapsed.as_millis()).unwrap_or(u64::MAX),
        ops: s
            .ops
            .iter()
            .map(|o| LiveOp {
                counts: o.counts.clone(),
                response_time: hist::encode(&o.response_time),
                service_time: hist::encode(&o.service_time),
                lag: hist::encode(&o.lag),
            })
            .collect(),
        in_flight: s.in_flight,
        vus: s.vus,
        achieved_rate: s.achieved_rate,
        target_rate: s.target_rate,
    }
}

/// `own` plus the segments' latest snapshots: counts summed and histograms added per
/// operation. Trace lists stay the coordinator's own (live thresholds do not read them).
pub fn merge(own: &Snapshot, others: &[LiveSnapshot]) -> Snapshot {
    let mut m = own.clone();
    for o in others {
        for (op, lo) in m.ops.iter_mut().zip(&o.ops) {
            add_op(op, lo);
        }
        m.in_flight += o.in_flight;
        m.vus += o.vus;
        m.achieved_rate += o.achieved_rate;
        m.target_rate += o.target_rate;
    }
    m
}

fn add_op(into: &mut OpSnapshot, o: &LiveOp) {
    into.counts.add(&o.counts);
    for (h, enc) in [
        (&mut into.response_time, &o.response_time),
        (&mut into.service_time, &o.service_time),
        (&mut into.lag, &o.lag),
    ] {
        if let Ok(d) = hist::decode(enc) {
            hist::add(h, &d);
        }
    }
}

/// Segment ≠ 0: forwards snapshots, obeys the coordinator's stop.
pub struct Forward {
    index: u32,
    run_id: String,
    tx: mpsc::Sender<LiveSnapshot>,
    stop: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Forward {
    pub fn spawn(client: Client, plan: &Plan, run_id: &str) -> Forward {
        // One in flight and one waiting: a slow coordinator gets the newest, never a backlog.
        let (tx, mut rx) = mpsc::channel::<LiveSnapshot>(1);
        let stop = Arc::new(Mutex::new(None));
        let seen = stop.clone();
        let task = tokio::spawn(async move {
            while let Some(snap) = rx.recv().await {
                if let Some(reason) = client.live(&snap).await {
                    *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
                }
            }
        });
        Forward {
            index: plan.segment.index,
            run_id: run_id.to_string(),
            tx,
            stop,
            task,
        }
    }
}

impl Sink for Forward {
    fn on_interval(&mut self, snapshot: &Snapshot, control: &mut Control) {
        if let Some(reason) = self.stop.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            control.abort(reason);
        }
        if !snapshot.finished {
            let _ = self
                .tx
                .try_send(to_live(self.index, &self.run_id, snapshot));
        }
    }

    fn finish<'a>(&'a mut self, _: &'a crate::report::Report) -> Finish<'a> {
        self.task.abort();
        Box::pin(async { Vec::new() })
    }
}

/// The coordinator: live thresholds on the merged view. Its own snapshot of a tick is merged
/// with the segments' snapshots of the same tick once they all arrived (they arrive over the
/// network a little after the coordinator's own tick), so the merged view is always one
/// consistent instant, at most a few intervals late.
pub struct Judge {
    /// Shared with the end of the run, which judges the windows that the merged reports
    /// cannot evaluate exactly (`windows_from_live`).
    live: Arc<Mutex<Live>>,
    server: Handle,
    /// The coordinator's own snapshots not judged yet, oldest first.
    pending: VecDeque<Snapshot>,
}

impl Judge {
    pub fn new(server: Handle, live: Arc<Mutex<Live>>) -> Judge {
        Judge {
            live,
            server,
            pending: VecDeque::new(),
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Sink for Judge {
    fn on_interval(&mut self, snapshot: &Snapshot, control: &mut Control) {
        if snapshot.finished {
            return;
        }
        self.pending.push_back(snapshot.clone());
        // The newest tick every segment has sent; older pending ticks are then skipped (the
        // windows take the larger step), a segment that went silent leaves ticks unjudged.
        let ready = self
            .pending
            .iter()
            .rposition(|own| self.server.live_at(ms(own.elapsed)).is_some());
        if let Some(i) = ready {
            let own = self
                .pending
                .drain(..=i)
                .next_back()
                .expect("i is an index of pending");
            let others = self.server.live_at(ms(own.elapsed)).unwrap_or_default();
            let merged = merge(&own, &others);
            let failed = self
                .live
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .observe(&merged);
            if let Some(reason) = failed {
                let reason = format!("{reason} (across all segments)");
                self.server.stop(&reason);
                control.abort(reason);
            }
        }
        while self.pending.len() > super::server::LIVE_KEEP {
            self.pending.pop_front();
        }
    }

    fn on_event(&mut self, event: &Event) {
        if let Event::Stopping(reason) = event {
            self.server.stop(reason);
        }
    }
}

/// Windowed thresholds that the merged reports cannot evaluate exactly (percentiles, one
/// operation, checks: `verdict::judge_merged` falls back to the worst of the segments) judged
/// instead on the windows the coordinator saw live across all segments. Count and rate windows
/// over all operations keep the exact result from the merged per-second timeline.
pub fn windows_from_live(plan: &Plan, merged: &mut Report, live: &Mutex<Live>) {
    let live = live.lock().unwrap_or_else(|p| p.into_inner());
    let from_live = verdict::evaluate(plan, merged, &live);
    let mut results = merged.thresholds.clone();
    for (t, r) in plan.thresholds.iter().zip(from_live) {
        let inexact =
            t.metric.is_time() || t.op.is_some() || matches!(t.metric, ThresholdMetric::Checks);
        if t.window.is_none() || !inexact {
            continue;
        }
        if let Some(slot) = results.iter_mut().find(|x| x.source == t.source) {
            let mut r = r;
            r.message = format!("{} (windows across all segments, live)", r.message);
            *slot = r;
        }
    }
    merged.set_thresholds(results);
}
