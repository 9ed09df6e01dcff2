//! Evaluating one threshold on one set of recorded data (counts + histograms over a known
//! number of seconds): the whole run, a window, or a merged report all come down to this.

use hdrhistogram::Histogram;

use crate::plan::{Aggregation, Comparison, Threshold, ThresholdMetric};
use crate::recorder::Counts;
use crate::report::ThresholdResult;

/// The data a threshold is evaluated on.
pub struct Sample<'a> {
    pub counts: &'a Counts,
    /// Microseconds.
    pub response: &'a Histogram<u64>,
    pub service: &'a Histogram<u64>,
    pub lag: &'a Histogram<u64>,
    /// Length of the period, for per-second rates.
    pub secs: f64,
}

/// The observed value, or why there is none (no samples, or an aggregation that does not apply).
pub fn observe(t: &Threshold, s: &Sample) -> Result<f64, String> {
    let name = t.metric.as_str();
    let no_samples = || {
        let filter =
            t.op.as_ref()
                .map(|o| format!(" for operation `{o}`"))
                .unwrap_or_default();
        Err(format!(
            "no samples: metric `{name}` recorded nothing{filter}"
        ))
    };
    let not_applicable = || {
        Err(format!(
            "aggregation {} does not apply to `{name}`",
            t.aggregation
        ))
    };
    let c = s.counts;
    if t.metric.is_time() {
        let h = match t.metric {
            ThresholdMetric::ResponseTime => s.response,
            ThresholdMetric::ServiceTime => s.service,
            _ => s.lag,
        };
        if h.is_empty() {
            return no_samples();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        return match t.aggregation {
            Aggregation::Percentile(p) => Ok(ms(h.value_at_quantile((p / 100.0).clamp(0.0, 1.0)))),
            Aggregation::Avg => Ok(h.mean() / 1000.0),
            Aggregation::Min => Ok(ms(h.min())),
            Aggregation::Max => Ok(ms(h.max())),
            Aggregation::Med => Ok(ms(h.value_at_quantile(0.5))),
            Aggregation::Count => Ok(h.len() as f64),
            Aggregation::Rate => not_applicable(),
        };
    }
    let errors: u64 = c.errors.iter().sum();
    let (denominator, count, rate) = match t.metric {
        ThresholdMetric::Errors => (c.requests, errors, errors as f64 / c.requests as f64),
        ThresholdMetric::Requests => (c.requests, c.requests, c.requests as f64 / s.secs),
        ThresholdMetric::Checks => {
            let total = c.checks_passed + c.checks_failed;
            (
                total,
                c.checks_failed,
                c.checks_passed as f64 / total as f64,
            )
        }
        _ => {
            // Abandoned arrivals (given up at the drain bound or a hard stop) were not served
            // either: they are part of the dropped share.
            let lost = c.dropped + c.abandoned;
            let arrivals = if c.planned > 0 {
                c.planned
            } else {
                c.requests + lost
            };
            (arrivals, lost, lost as f64 / arrivals as f64)
        }
    };
    if denominator == 0 {
        return no_samples();
    }
    match t.aggregation {
        Aggregation::Count => Ok(count as f64),
        Aggregation::Rate if t.metric == ThresholdMetric::Requests && s.secs <= 0.0 => no_samples(),
        Aggregation::Rate => Ok(rate),
        _ => not_applicable(),
    }
}

/// Turns an observation into a result.
pub fn judge(t: &Threshold, observed: Result<f64, String>, context: &str) -> ThresholdResult {
    match observed {
        Ok(v) => {
            let passed = t.comparison.holds(v, t.value);
            let message = if passed {
                String::new()
            } else {
                format!("observed {v:.4} does not satisfy {}{}", t.source, context)
            };
            ThresholdResult {
                source: t.source.clone(),
                passed,
                observed: Some(v),
                message,
                window: None,
            }
        }
        Err(why) => ThresholdResult {
            source: t.source.clone(),
            passed: false,
            observed: None,
            message: format!("FAILED: {why}{context}"),
            window: None,
        },
    }
}

/// Whether `a` is a worse observation than `b` for this comparison (closer to failing).
pub fn worse(c: Comparison, bound: f64, a: f64, b: f64) -> bool {
    let (fa, fb) = (!c.holds(a, bound), !c.holds(b, bound));
    if fa != fb {
        return fa;
    }
    match c {
        Comparison::Lt | Comparison::Le => a > b,
        Comparison::Gt | Comparison::Ge => a < b,
        Comparison::Eq | Comparison::Ne => (a - bound).abs() > (b - bound).abs(),
    }
}
