//! Evaluating one threshold on one set of recorded data (counts + histograms over a known
//! number of seconds): the whole run, a window, or a merged report all come down to this.

use hdrhistogram::Histogram;

use crate::plan::{Aggregation, Comparison, Threshold, ThresholdMetric};
use crate::recorder::Counts;
use crate::report::{ThresholdResult, ThresholdSpec};

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

pub fn metric_name(m: ThresholdMetric) -> &'static str {
    match m {
        ThresholdMetric::ResponseTime => "response_time",
        ThresholdMetric::ServiceTime => "service_time",
        ThresholdMetric::Errors => "errors",
        ThresholdMetric::Requests => "requests",
        ThresholdMetric::Checks => "checks",
        ThresholdMetric::Dropped => "dropped",
        ThresholdMetric::ScheduleLag => "schedule_lag",
    }
}

/// True for the metrics evaluated from histograms.
pub fn is_latency(m: ThresholdMetric) -> bool {
    matches!(
        m,
        ThresholdMetric::ResponseTime | ThresholdMetric::ServiceTime | ThresholdMetric::ScheduleLag
    )
}

fn agg_name(a: Aggregation) -> String {
    match a {
        Aggregation::Percentile(p) => format!("p({p})"),
        Aggregation::Avg => "avg".into(),
        Aggregation::Min => "min".into(),
        Aggregation::Max => "max".into(),
        Aggregation::Med => "med".into(),
        Aggregation::Rate => "rate".into(),
        Aggregation::Count => "count".into(),
    }
}

/// The observed value, or why there is none (no samples, or an aggregation that does not apply).
pub fn observe(t: &Threshold, s: &Sample) -> Result<f64, String> {
    let name = metric_name(t.metric);
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
            agg_name(t.aggregation)
        ))
    };
    let c = s.counts;
    if is_latency(t.metric) {
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
            let arrivals = c.requests + c.dropped;
            (arrivals, c.dropped, c.dropped as f64 / arrivals as f64)
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
            }
        }
        Err(why) => ThresholdResult {
            source: t.source.clone(),
            passed: false,
            observed: None,
            message: format!("FAILED: {why}{context}"),
        },
    }
}

fn cmp_name(c: Comparison) -> &'static str {
    match c {
        Comparison::Lt => "lt",
        Comparison::Le => "le",
        Comparison::Gt => "gt",
        Comparison::Ge => "ge",
        Comparison::Eq => "eq",
        Comparison::Ne => "ne",
    }
}

pub fn spec(t: &Threshold) -> ThresholdSpec {
    let (aggregation, percentile) = match t.aggregation {
        Aggregation::Percentile(p) => ("percentile".to_string(), Some(p)),
        a => (agg_name(a), None),
    };
    ThresholdSpec {
        source: t.source.clone(),
        metric: metric_name(t.metric).to_string(),
        op: t.op.clone(),
        aggregation,
        percentile,
        comparison: cmp_name(t.comparison).to_string(),
        value: t.value,
        window_s: t.window.map(|w| w.as_secs_f64()),
    }
}

/// The inverse of `spec` (abort settings do not matter after the run).
pub fn from_spec(s: &ThresholdSpec) -> Option<Threshold> {
    let metric = [
        ThresholdMetric::ResponseTime,
        ThresholdMetric::ServiceTime,
        ThresholdMetric::Errors,
        ThresholdMetric::Requests,
        ThresholdMetric::Checks,
        ThresholdMetric::Dropped,
        ThresholdMetric::ScheduleLag,
    ]
    .into_iter()
    .find(|m| metric_name(*m) == s.metric)?;
    let aggregation = match s.aggregation.as_str() {
        "percentile" => Aggregation::Percentile(s.percentile?),
        "avg" => Aggregation::Avg,
        "min" => Aggregation::Min,
        "max" => Aggregation::Max,
        "med" => Aggregation::Med,
        "rate" => Aggregation::Rate,
        "count" => Aggregation::Count,
        _ => return None,
    };
    let comparison = [
        Comparison::Lt,
        Comparison::Le,
        Comparison::Gt,
        Comparison::Ge,
        Comparison::Eq,
        Comparison::Ne,
    ]
    .into_iter()
    .find(|c| cmp_name(*c) == s.comparison)?;
    Some(Threshold {
        source: s.source.clone(),
        metric,
        op: s.op.clone(),
        aggregation,
        comparison,
        value: s.value,
        window: s.window_s.map(std::time::Duration::from_secs_f64),
        abort_on_fail: false,
        delay_abort_eval: std::time::Duration::ZERO,
    })
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
