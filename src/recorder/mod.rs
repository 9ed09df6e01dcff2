//! Recorder: per-worker HdrHistograms and counters, merged off the hot path into a `Snapshot`.
//! (OWNER: engine helper.)

pub mod snapshot;

pub use snapshot::{Counts, ErrorKind, OpSnapshot, Snapshot, SpanRecord, TraceRef};
