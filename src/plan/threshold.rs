//! Threshold expressions (`p(95)<300`, `rate<0.01`, `count>100`), parsed once into `Threshold`.
//!
//! Owns the grammar and the parsed form; evaluation against recorded data belongs to `verdict`.
//! (OWNER: scenario/plan helper — replace this header's grammar note with the BNF.)

use std::time::Duration;

/// One parsed threshold, as the verdict stage evaluates it.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The expression as the user wrote it (with its metric and filter), for the report.
    pub source: String,
    pub metric: ThresholdMetric,
    /// Only samples of this operation (`response_time{op:create}`); `None` = all operations.
    pub op: Option<String>,
    pub aggregation: Aggregation,
    pub comparison: Comparison,
    /// In the metric's unit: milliseconds for times, a fraction 0..1 for rates, a count.
    pub value: f64,
    /// `Some(w)`: the condition must hold over every window of length `w` (sliding, on the
    /// per-second timeline), not only over the whole run.
    pub window: Option<Duration>,
    /// Stop the run as soon as this threshold fails (after `delay_abort_eval`).
    pub abort_on_fail: bool,
    pub delay_abort_eval: Duration,
}

/// The built-in metrics a threshold can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThresholdMetric {
    /// Latency from the intended start (coordinated-omission corrected), ms. Aggregations:
    /// p(N), avg, min, max, med.
    ResponseTime,
    /// Latency from the actual send, ms. Same aggregations.
    ServiceTime,
    /// Failed requests (transport errors, 5xx, failed checks count separately). Aggregations: rate, count.
    Errors,
    /// All requests completed. Aggregations: count, rate (per second).
    Requests,
    /// Check results. Aggregation: rate (share passed), count (failed).
    Checks,
    /// Arrivals dropped because no connection was free. Aggregation: count, rate.
    Dropped,
    /// Dispatch lag (actual send − intended start), ms. Aggregations as response_time.
    ScheduleLag,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregation {
    /// p(N), N in (0, 100].
    Percentile(f64),
    Avg,
    Min,
    Max,
    Med,
    Rate,
    Count,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Comparison {
    pub fn holds(self, observed: f64, bound: f64) -> bool {
        match self {
            Comparison::Lt => observed < bound,
            Comparison::Le => observed <= bound,
            Comparison::Gt => observed > bound,
            Comparison::Ge => observed >= bound,
            Comparison::Eq => observed == bound,
            Comparison::Ne => observed != bound,
        }
    }
}
