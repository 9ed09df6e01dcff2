//! Header-fault windows opened and closed through the control API while the run goes on: the
//! scenario's own header windows (opened now, for a while) or ad-hoc ones. `HeaderFaults`
//! consults them after the plan's windows.
//!
//! The hot path pays one atomic load per request outside the windows' time (before the first
//! opens and after the last ends), a shared read lock within it (only the rare control calls
//! write). Their faults are numbered
//! after the plan's windows (`plan.faults.len() + n`), so the report's per-window counts stay
//! the plan windows' own; the per-operation fault counts include them.

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{HeaderFault, HeaderFaults};
use crate::plan::{FaultKind, FaultVia, FaultWindow, Plan};

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
    /// The latest end of any window, µs from the start of the load (0: none): a request
    /// intended after it needs no lock.
    until_us: AtomicU64,
    /// Each window as the plan's own `HeaderFaults` of one window, so it decides exactly as
    /// a scenario window does.
    windows: RwLock<Vec<(String, HeaderFaults)>>,
    plan: Plan,
}

impl LiveWindows {
    pub fn new(plan: &Plan) -> LiveWindows {
        LiveWindows {
            until_us: AtomicU64::new(0),
            windows: RwLock::new(Vec::new()),
            plan: plan.clone(),
        }
    }

    /// Adds `w` (a header window, times from the start of the load) as window `id`.
    fn add(&self, id: &str, w: FaultWindow) {
        let mut one = self.plan.clone();
        one.faults = vec![w];
        let mut faults = HeaderFaults::new(&one);
        let mut ws = self.windows.write().unwrap_or_else(|p| p.into_inner());
        // Numbered after the plan's windows (see the module doc).
        let index = self.plan.faults.len() + ws.len();
        for w in &mut faults.windows {
            w.index = index;
        }
        ws.push((id.to_string(), faults));
        self.until_us.store(latest_end(&ws), Ordering::Release);
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
        let Some(w) = self.plan.faults.get(i) else {
            return Err(format!("no fault window {i}"));
        };
        if w.via != FaultVia::Header {
            return Err(format!("window {i} is not a header-fault window"));
        }
        self.add(
            id,
            FaultWindow {
                start,
                duration,
                share: share.unwrap_or(w.share),
                ..w.clone()
            },
        );
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
        let names: Vec<&str> = self
            .plan
            .mix
            .operations
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        if let Some(bad) = spec.ops.iter().find(|o| !names.contains(&o.as_str())) {
            return Err(format!(
                "no operation `{bad}` in this scenario (it has: {})",
                names.join(", ")
            ));
        }
        let kind = match spec.status {
            Some(status) => FaultKind::Error { status },
            None => FaultKind::Latency {
                delay: Duration::from_millis(spec.delay_ms),
                jitter: Duration::from_millis(spec.jitter_ms),
                span: None,
            },
        };
        self.add(
            id,
            FaultWindow {
                start,
                duration,
                ops: spec.ops.clone(),
                route: None,
                method: None,
                share: spec.share,
                kind,
                via: FaultVia::Header,
            },
        );
        Ok(())
    }

    /// Ends window `id` at `at` (no later than it would have). False: no such window.
    pub fn close(&self, id: &str, at: Duration) -> bool {
        let mut ws = self.windows.write().unwrap_or_else(|p| p.into_inner());
        match ws.iter_mut().find(|(i, _)| i == id) {
            Some((_, f)) => {
                for w in &mut f.windows {
                    w.end = w.end.min(at.max(w.start));
                }
                self.until_us.store(latest_end(&ws), Ordering::Release);
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
        let at = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        if at >= self.until_us.load(Ordering::Acquire) {
            return None;
        }
        let ws = self.windows.read().unwrap_or_else(|p| p.into_inner());
        ws.iter().find_map(|(_, f)| f.pick(op, elapsed, rng))
    }
}

fn latest_end(ws: &[(String, HeaderFaults)]) -> u64 {
    ws.iter()
        .flat_map(|(_, f)| &f.windows)
        .map(|w| u64::try_from(w.end.as_micros()).unwrap_or(u64::MAX))
        .max()
        .unwrap_or(0)
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
