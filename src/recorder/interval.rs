//! Exact per-interval attribution. A worker hands its recorder over once per interval, when its
//! flush timer fires; on a busy machine that timer fires late, and the requests that ended in
//! between belong to the next interval. So every request is recorded into the interval it
//! *ended* in: its end is `at + lag + service` (intended start + schedule lag = the send, plus
//! the service time), all in the record already, and a request past the recorder's `Span` goes
//! to a recorder of the interval it ended in (`later`). The flush (`rotate`) hands over exactly
//! one interval and keeps the later ones; the run loop takes an interval's snapshot only once
//! every worker delivered it (`run::load`), so the per-second timeline is exact however late
//! a worker flushes. Counters that are not a request's (planned, dropped, checks, retries)
//! stay with the flush that carries them.

use super::{RequestRecord, WorkerRecorder};

/// Later intervals kept apart at most; a request further ahead (a flush late by more than
/// this many intervals) goes into the last of them.
pub const MAX_LATER: usize = 64;

/// The interval a recorder holds: number `index` (1-based: interval `n` ends at `n` ×
/// `interval_us` from the start of the load). `interval_us == 0`: no attribution (a recorder
/// of a test, or a part already attributed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub index: u32,
    pub interval_us: u64,
}

impl Span {
    pub fn first(interval_us: u64) -> Span {
        Span {
            index: 1,
            interval_us,
        }
    }
    /// End of the interval, µs from the start of the load.
    pub fn end_us(self) -> u64 {
        (self.index as u64).saturating_mul(self.interval_us)
    }
}

impl WorkerRecorder {
    /// The recorder of a later interval that `o` belongs to, if it ended after this one.
    pub(super) fn later_for(&mut self, o: &RequestRecord) -> Option<&mut WorkerRecorder> {
        let span = self.span;
        if span.interval_us == 0 {
            return None;
        }
        let end = o
            .at_us
            .saturating_add(o.lag_us)
            .saturating_add(o.st_us.unwrap_or(0));
        if end < span.end_us() {
            return None;
        }
        let i = ((end - span.end_us()) / span.interval_us).min(MAX_LATER as u64 - 1) as usize;
        while self.later.len() <= i {
            let mut r = WorkerRecorder::new(self.worker, self.ops.len(), self.traces.keep);
            r.span = Span {
                index: span.index + 1 + self.later.len() as u32,
                interval_us: 0,
            };
            self.later.push(r);
        }
        Some(&mut self.later[i])
    }

    /// The flush: returns this interval's delta (without the later parts) and continues with
    /// the next interval, which is the first later part if requests of it were recorded
    /// already, else `spare` (emptied).
    pub fn rotate(&mut self, mut spare: WorkerRecorder) -> WorkerRecorder {
        let span = self.span;
        let mut later = std::mem::take(&mut self.later);
        let next = if later.is_empty() {
            spare.reset();
            spare.worker = self.worker;
            spare
        } else {
            later.remove(0)
        };
        let mut sealed = std::mem::replace(self, next);
        self.later = later;
        self.span = Span {
            index: span.index + 1,
            interval_us: span.interval_us,
        };
        for l in &mut self.later {
            l.span.interval_us = 0;
        }
        sealed.later.clear();
        sealed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::Collector;
    use std::time::Duration;

    fn ended_at(ms: u64) -> RequestRecord {
        RequestRecord::ok_for_tests(1_000, ms * 1000 - 1_000)
    }

    /// A worker whose flush of second 1 comes 1.7 s late (at 2.7 s): the requests that ended
    /// in seconds 2 and 3 meanwhile are handed over with their own seconds, not with second 1.
    #[test]
    fn a_late_flush_moves_no_request_into_another_interval() {
        let mut w = WorkerRecorder::new(0, 1, 0);
        w.span = Span::first(1_000_000);
        for ms in [100, 900, 999] {
            w.record(&ended_at(ms));
        }
        // The flush is late: meanwhile requests end in seconds 2 and 3.
        for ms in [1_000, 1_500, 2_100, 2_600, 2_700] {
            w.record(&ended_at(ms));
        }
        let spare = || WorkerRecorder::new(0, 1, 0);
        let first = w.rotate(spare());
        assert_eq!((first.span.index, first.ops[0].counts.requests), (1, 3));
        // The late flush loop catches up at once: seconds 2 and 3 are handed over in turn.
        let second = w.rotate(spare());
        assert_eq!((second.span.index, second.ops[0].counts.requests), (2, 2));
        w.record(&ended_at(2_800));
        let third = w.rotate(spare());
        assert_eq!((third.span.index, third.ops[0].counts.requests), (3, 4));
        assert_eq!(w.span.index, 4);
        assert!(w.later.is_empty());
        // The collector sees every request once.
        let mut c = Collector::new(vec!["a".into()], 1, 0);
        for d in [&first, &second, &third] {
            c.absorb(d);
        }
        let s = c.snapshot(Duration::from_secs(3), 0.0, vec![], true);
        assert_eq!(s.totals().requests, 9);
    }
}
