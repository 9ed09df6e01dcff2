//! The accounting counters of a worker's recorder: every arrival is planned, then completed,
//! dropped or abandoned (`Counts::planned == completed + dropped + abandoned`), and some are
//! *behind* (the generator's own lateness, read by the run's schedule health check).

use super::{BEHIND_US, WorkerRecorder};

impl WorkerRecorder {
    /// An arrival came due (counted before it is queued, dropped or sent).
    pub fn planned(&mut self, op: usize) {
        if let Some(o) = self.ops.get_mut(op) {
            o.counts.planned += 1;
        }
    }
    /// Closed model: a VU's request is an arrival of its own (the open model counts its
    /// arrivals at release, before they can be dropped).
    pub fn planned_if_closed(&mut self, closed: bool, op: usize) {
        if closed {
            self.planned(op);
        }
    }
    /// An arrival's handling ended (see `Counts::completed`).
    pub fn completed(&mut self, op: usize) {
        if let Some(o) = self.ops.get_mut(op) {
            o.counts.completed += 1;
        }
    }
    /// An arrival given up at the drain bound or a hard stop, after waiting `waited_us` since
    /// the point its response time counts from: counted, and that wait goes into the
    /// response-time histogram (the least its latency would have been).
    pub fn abandoned(&mut self, op: usize, waited_us: u64) {
        if let Some(o) = self.ops.get_mut(op) {
            o.counts.abandoned += 1;
            o.response_time.saturating_record(waited_us.max(1));
        }
    }
    /// `n` arrivals of `op` that came due but were never released (a dispatcher behind its
    /// schedule when the run stopped): planned, abandoned with at least `waited_us`, and
    /// behind when that is beyond `BEHIND_US`.
    pub fn unreleased(&mut self, op: usize, n: u64, waited_us: u64) {
        if let Some(o) = self.ops.get_mut(op).filter(|_| n > 0) {
            o.counts.planned += n;
            o.counts.abandoned += n;
            if waited_us > BEHIND_US {
                o.counts.behind += n;
            }
            o.response_time.saturating_record_n(waited_us.max(1), n);
        }
    }
    /// An arrival released later than `BEHIND_US` after its intended start.
    pub fn behind(&mut self, op: usize) {
        if let Some(o) = self.ops.get_mut(op) {
            o.counts.behind += 1;
        }
    }
}
