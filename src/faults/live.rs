//! Header-fault windows opened and closed through the control API while the run goes on: the
//! scenario's own header windows (opened now, for a while) or ad-hoc ones. `HeaderFaults`
//! consults them after the plan's windows.
//!
//! The hot path pays one relaxed atomic load per request until the first window is opened,
//! then a read lock that only the (rare) control calls contend. Their faults are numbered
//! after the plan's windows (`plan.faults.len() + n`), so the report's per-window counts stay
//! the plan windows' own; the per-operation fault counts include them.

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{HeaderFault, HeaderWindow};
use crate::plan::{FaultVia, Plan};

/// An ad-hoc header window: what it does and to which operations (empty: all).
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// `X-Fault-Status` (an error fault), else a latency fault of `delay_ms` (+ jitter).
    pub status: Option<u16>,
    pub delay_ms: u64,
    pub jitter_ms: u64,
    pub share: f64,
    pub ops: Vec<String>,
}

#[derive(Debug)]
pub struct LiveWindows {
    /// Set once a window was opened: the hot path reads it before taking the lock.
    any: AtomicBool,
    windows: RwLock<Vec<(String, HeaderWindow)>>,
    op_names: Vec<String>,
    plan: Vec<crate::plan::FaultWindow>,
}

impl LiveWindows {
    pub fn new(plan: &Plan) -> LiveWindows {
        LiveWindows {
            any: AtomicBool::new(false),
            windows: RwLock::new(Vec::new()),
            op_names: plan.mix.operations.iter().map(|o| o.name.clone()).collect(),
            plan: plan.faults.clone(),
        }
    }

    fn names(&self) -> Vec<&str> {
        self.op_names.iter().map(String::as_str).collect()
    }

    fn add(&self, id: &str, w: HeaderWindow) {
        let mut ws = self.windows.write().unwrap_or_else(|p| p.into_inner());
        ws.push((id.to_string(), w));
        self.any.store(true, Ordering::Release);
    }

    /// The next window number (after the plan's).
    fn next_index(&self) -> usize {
        self.plan.len() + self.windows.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Opens the scenario's header window `i` at `start` (from the start of the load) for
    /// `duration`, with `share` instead of its own when given.
    pub fn open_plan(
        &self,
        id: &str,
        i: usize,
        start: Duration,
        duration: Duration,
        share: Option<f64>,
    ) -> Result<(), String> {
        let Some(w) = self.plan.get(i) else {
            return Err(format!("no fault window {i}"));
        };
        if w.via != FaultVia::Header {
            return Err(format!("window {i} is not a header-fault window"));
        }
        let mut hw = HeaderWindow::of(self.next_index(), w, &self.names());
        hw.start = start;
        hw.end = start.saturating_add(duration);
        if let Some(s) = share {
            hw.share = s;
        }
        self.add(id, hw);
        Ok(())
    }

    /// Opens an ad-hoc header window at `start` for `duration`.
    pub fn open(
        &self,
        id: &str,
        spec: &Spec,
        start: Duration,
        duration: Duration,
    ) -> Result<(), String> {
        let names = self.names();
        if let Some(bad) = spec.ops.iter().find(|o| !names.contains(&o.as_str())) {
            return Err(format!(
                "no operation `{bad}` in this scenario (it has: {})",
                names.join(", ")
            ));
        }
        let ops = if spec.ops.is_empty() {
            Vec::new()
        } else {
            names
                .iter()
                .map(|n| spec.ops.iter().any(|o| o == n))
                .collect()
        };
        self.add(
            id,
            HeaderWindow {
                index: self.next_index(),
                start,
                end: start.saturating_add(duration),
                ops,
                share: spec.share,
                delay_ms: spec.delay_ms,
                jitter_ms: spec.jitter_ms,
                status: spec.status,
                span: None,
            },
        );
        Ok(())
    }

    /// Ends window `id` at `at` (no later than it would have). False: no such window.
    pub fn close(&self, id: &str, at: Duration) -> bool {
        let mut ws = self.windows.write().unwrap_or_else(|p| p.into_inner());
        match ws.iter_mut().find(|(i, _)| i == id) {
            Some((_, w)) => {
                w.end = w.end.min(at.max(w.start));
                true
            }
            None => false,
        }
    }

    pub(super) fn pick(
        &self,
        op: usize,
        elapsed: Duration,
        rng: &mut impl rand::Rng,
    ) -> Option<HeaderFault> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let ws = self.windows.read().unwrap_or_else(|p| p.into_inner());
        ws.iter().find_map(|(_, w)| w.decide(op, elapsed, rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn an_opened_window_faults_until_it_is_closed() {
        let plan = crate::faults::tests::plan(vec![]);
        let faults = std::sync::Arc::new(LiveWindows::new(&plan));
        let h = super::super::HeaderFaults::new(&plan).with_live(faults.clone());
        assert!(!h.is_empty(), "a control API can open windows");
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let s = Duration::from_secs;
        assert_eq!(h.pick(0, s(1), &mut rng), None);
        let spec = Spec {
            status: Some(503),
            delay_ms: 0,
            jitter_ms: 0,
            share: 1.0,
            ops: vec![],
        };
        faults.open("c1", &spec, s(2), s(60)).unwrap();
        assert_eq!(h.pick(0, s(1), &mut rng), None, "before it opened");
        let f = h
            .pick(0, s(3), &mut rng)
            .expect("a fault inside the window");
        assert_eq!((f.status, f.window), (Some(503), plan.faults.len()));
        assert!(faults.close("c1", s(4)));
        assert_eq!(h.pick(0, s(5), &mut rng), None, "after it closed");
        assert!(h.pick(0, Duration::from_millis(3500), &mut rng).is_some());
        assert!(!faults.close("c9", s(4)));
        let bad = Spec {
            ops: vec!["nope".into()],
            ..spec
        };
        assert!(
            faults
                .open("c2", &bad, s(5), s(1))
                .unwrap_err()
                .contains("no operation `nope`")
        );
    }
}
