//! The trace ids a run keeps to show (the slowest, failed and faulted requests, bounded lists
//! merged from worker deltas) and what one entry holds, without allocation.

use std::collections::VecDeque;

use super::{ErrorKind, RequestRecord, TraceRef};

/// A request worth remembering, without allocation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawTrace {
    pub trace_id: [u8; 16],
    pub op: u16,
    /// Intended start, from the start of the load.
    pub at_us: u64,
    pub rt_us: u64,
    pub status: Option<u16>,
    pub error: Option<ErrorKind>,
    pub fault: Option<&'static str>,
}

impl RawTrace {
    /// What a trace list keeps of a finished request.
    pub fn of(o: &RequestRecord) -> RawTrace {
        RawTrace {
            trace_id: o.trace_id,
            op: o.op as u16,
            at_us: o.at_us,
            rt_us: o.rt_us.unwrap_or(0),
            status: o.status,
            error: o.error,
            fault: o.fault,
        }
    }

    pub fn to_ref(&self, names: &[String]) -> TraceRef {
        TraceRef {
            trace_id: hex(&self.trace_id),
            op: names.get(self.op as usize).cloned().unwrap_or_default(),
            at_ms: self.at_us as f64 / 1000.0,
            response_time_ms: self.rt_us as f64 / 1000.0,
            status: self.status,
            error: self.error,
            fault: self.fault.map(str::to_string),
        }
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

/// Bounded trace lists shared by worker deltas and the collector.
#[derive(Debug, Clone, Default)]
pub struct TraceLists {
    pub(super) keep: usize,
    /// Slowest first.
    pub slowest: Vec<RawTrace>,
    /// Most recent first.
    pub failed: VecDeque<RawTrace>,
    pub faulted: VecDeque<RawTrace>,
}

impl TraceLists {
    pub fn new(keep: usize) -> Self {
        TraceLists {
            keep,
            slowest: Vec::with_capacity(keep + 1),
            failed: VecDeque::with_capacity(keep + 1),
            faulted: VecDeque::with_capacity(keep + 1),
        }
    }
    fn offer_slow(&mut self, t: RawTrace) {
        if self.keep == 0 {
            return;
        }
        if self.slowest.len() == self.keep
            && self.slowest.last().is_some_and(|l| l.rt_us >= t.rt_us)
        {
            return;
        }
        let at = self.slowest.partition_point(|x| x.rt_us >= t.rt_us);
        self.slowest.insert(at, t);
        self.slowest.truncate(self.keep);
    }
    /// Whether `offer` would keep `t` in at least one list now.
    pub(super) fn would_keep(&self, t: &RawTrace) -> bool {
        if self.keep == 0 {
            return false;
        }
        (t.error.is_some() && self.failed.len() < self.keep)
            || (t.fault.is_some() && self.faulted.len() < self.keep)
            || (t.rt_us > 0
                && (self.slowest.len() < self.keep
                    || self.slowest.last().is_some_and(|l| l.rt_us < t.rt_us)))
    }
    fn push_recent(list: &mut VecDeque<RawTrace>, keep: usize, t: RawTrace) {
        if keep == 0 {
            return;
        }
        list.push_front(t);
        list.truncate(keep);
    }
    pub fn offer(&mut self, t: RawTrace) {
        if t.rt_us > 0 {
            self.offer_slow(t);
        }
        if t.error.is_some() {
            Self::push_recent(&mut self.failed, self.keep, t);
        }
        if t.fault.is_some() {
            Self::push_recent(&mut self.faulted, self.keep, t);
        }
    }
    /// Adds a newer delta's lists (its entries are more recent than ours).
    pub fn absorb(&mut self, newer: &TraceLists) {
        for t in &newer.slowest {
            self.offer_slow(*t);
        }
        for t in newer.failed.iter().rev() {
            Self::push_recent(&mut self.failed, self.keep, *t);
        }
        for t in newer.faulted.iter().rev() {
            Self::push_recent(&mut self.faulted, self.keep, *t);
        }
    }
    pub(super) fn clear(&mut self) {
        self.slowest.clear();
        self.failed.clear();
        self.faulted.clear();
    }
}
