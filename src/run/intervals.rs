//! Exact intervals on the run loop's side: a snapshot of interval `n` holds every request that
//! ended in intervals 1..=n and none after, however late a worker flushed. Each worker delta
//! says which interval it is (`recorder::interval::Span`); a delta of a later interval than the
//! next snapshot's is kept back until then, and the snapshot of interval `n` is taken once
//! every running worker delivered `n` (or, so that a worker stuck for seconds cannot stall the
//! progress output, after `WAIT`).

use std::time::Duration;

use crate::recorder::{Collector, WorkerRecorder};

/// Longest wait for a late worker's delta before a snapshot is taken without it.
pub const WAIT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Intervals {
    /// Per worker: the last interval delivered (`u32::MAX` once finished).
    delivered: Vec<u32>,
    /// Deltas of intervals after `next`.
    early: Vec<WorkerRecorder>,
    /// The interval of the next snapshot (1-based).
    next: u32,
}

impl Intervals {
    pub fn new(workers: usize) -> Self {
        Intervals {
            delivered: vec![0; workers],
            early: Vec::new(),
            next: 1,
        }
    }

    /// A worker's delta: absorbed now, or kept back when it is of a later interval than the
    /// next snapshot's. Returns the deltas absorbed (to recycle).
    pub fn arrive(&mut self, d: WorkerRecorder, c: &mut Collector) -> Option<WorkerRecorder> {
        if let Some(w) = self.delivered.get_mut(d.worker) {
            *w = if d.finished {
                u32::MAX
            } else {
                (*w).max(d.span.index)
            };
        }
        if d.span.index > self.next && !d.finished {
            self.early.push(d);
            return None;
        }
        c.absorb(&d);
        Some(d)
    }

    /// Whether every running worker delivered the next snapshot's interval.
    pub fn complete(&self) -> bool {
        self.delivered.iter().all(|&d| d >= self.next)
    }

    /// The snapshot of the next interval was taken: moves on and absorbs the deltas kept back
    /// that are due now. Returns them (to recycle).
    pub fn advance(&mut self, c: &mut Collector) -> Vec<WorkerRecorder> {
        self.next = self.next.saturating_add(1);
        let next = self.next;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.early)
            .into_iter()
            .partition(|d| d.span.index <= next);
        self.early = later;
        for d in &due {
            c.absorb(d);
        }
        due
    }

    /// The end of the load: everything kept back is absorbed.
    pub fn finish(&mut self, c: &mut Collector) {
        for d in self.early.drain(..) {
            c.absorb(&d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::interval::Span;

    fn delta(worker: usize, index: u32, requests: u64) -> WorkerRecorder {
        let mut d = WorkerRecorder::new(worker, 1, 0);
        d.span = Span {
            index,
            interval_us: 1_000_000,
        };
        d.ops[0].counts.requests = requests;
        d
    }

    /// Worker 1 is late: its interval-1 delta comes after worker 0's interval 2. The snapshot
    /// of interval 1 waits for it and does not see worker 0's interval 2.
    #[test]
    fn a_snapshot_holds_exactly_its_intervals() {
        let mut c = Collector::new(vec!["a".into()], 2, 0);
        let mut iv = Intervals::new(2);
        assert!(iv.arrive(delta(0, 1, 10), &mut c).is_some());
        assert!(!iv.complete(), "worker 1 has not delivered interval 1");
        assert!(iv.arrive(delta(0, 2, 7), &mut c).is_none(), "kept back");
        assert!(iv.arrive(delta(1, 1, 5), &mut c).is_some());
        assert!(iv.complete());
        let s = c.snapshot(Duration::from_secs(1), 0.0, vec![], false);
        assert_eq!(s.totals().requests, 15);
        assert_eq!(iv.advance(&mut c).len(), 1);
        assert!(!iv.complete());
        let mut last = delta(1, 2, 1);
        last.finished = true;
        iv.arrive(last, &mut c);
        assert!(iv.complete());
        let s = c.snapshot(Duration::from_secs(2), 0.0, vec![], false);
        assert_eq!(s.totals().requests, 23);
    }

    fn ended_at(ms: u64) -> crate::recorder::RequestRecord {
        crate::recorder::RequestRecord::ok_for_tests(500, ms * 1000 - 500)
    }

    /// The per-second timeline under a simulated late flush: worker 1's flush of second 1
    /// comes at 2.5 s, after requests of second 2 were recorded; worker 0 is on time. The
    /// points count each request in the second it ended in.
    #[test]
    fn the_timeline_is_exact_under_a_late_flush() {
        let mut c = Collector::new(vec!["a".into()], 2, 0);
        let mut iv = Intervals::new(2);
        let mut timeline = crate::report::Timeline::default();
        let rec = |w| {
            let mut r = WorkerRecorder::new(w, 1, 0);
            r.span = Span::first(1_000_000);
            r
        };
        let (mut w0, mut w1) = (rec(0), rec(1));
        for ms in (50..1000).step_by(100) {
            w0.record(&ended_at(ms)); // 10 in second 1
        }
        for ms in [100, 300, 500, 700, 900] {
            w1.record(&ended_at(ms)); // 5 in second 1
        }
        // Second 1's tick: worker 0 delivered, worker 1 is busy (its flush is late).
        iv.arrive(w0.rotate(rec(0)), &mut c);
        assert!(!iv.complete(), "the snapshot of second 1 waits");
        for ms in (1050..2000).step_by(100) {
            w0.record(&ended_at(ms)); // 10 in second 2
        }
        iv.arrive(w0.rotate(rec(0)), &mut c); // second 2, early: kept back
        for ms in [1100, 1200, 1300, 1400, 1500, 1600, 1700] {
            w1.record(&ended_at(ms)); // 7 in second 2, before its late flush
        }
        iv.arrive(w1.rotate(rec(1)), &mut c); // at 2.5 s: second 1 only
        assert!(iv.complete());
        timeline.observe(&c.snapshot(Duration::from_secs(1), 0.0, vec![], false));
        iv.advance(&mut c);
        iv.arrive(w1.rotate(rec(1)), &mut c); // its second 2 right after
        assert!(iv.complete());
        timeline.observe(&c.snapshot(Duration::from_secs(2), 0.0, vec![], false));
        let counts: Vec<(u64, u64)> = timeline.points.iter().map(|p| (p.t, p.requests)).collect();
        assert_eq!(counts, vec![(1, 15), (2, 17)]);
    }
}
