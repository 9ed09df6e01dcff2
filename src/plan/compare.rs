//! Regression rules of `report compare`: a threshold whose bound is the baseline run's value.
//!
//! ```text
//! rule   := key ":" left comparison "baseline" [ ("*" NUMBER) | (("+" | "-") NUMBER [unit]) ]
//! left   := the aggregation of a threshold on `key` (p(95), avg, rate, count, …)
//! unit   := ms | s | us (times), % (shares: errors, checks, dropped), /s (requests rate)
//! ```
//!
//! `response_time: p(95) < baseline * 1.10` fails when the new p95 is 10 % above the baseline's;
//! `errors: rate < baseline + 0.5%` when the error rate rose by half a percentage point. The key
//! and the aggregation are parsed by the threshold parser (`threshold::parse`), so they accept
//! exactly what thresholds accept.

use super::threshold::{self, Aggregation, Comparison, Threshold, ThresholdError};

/// How the bound is made from the baseline's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// `baseline * f`
    Times(f64),
    /// `baseline + d` (`- d` is a negative `d`), in the metric's unit (ms, a 0..1 share, /s).
    Plus(f64),
}

/// One parsed rule. `left` holds the metric, the operation filter and the aggregation (its
/// `value` and `window` are unused).
#[derive(Debug, Clone, PartialEq)]
pub struct CompareRule {
    /// The rule as written (`key: expression`).
    pub source: String,
    pub left: Threshold,
    pub comparison: Comparison,
    pub bound: Bound,
}

impl CompareRule {
    /// The bound for a baseline value.
    pub fn bound_for(&self, baseline: f64) -> f64 {
        match self.bound {
            Bound::Times(f) => baseline * f,
            Bound::Plus(d) => baseline + d,
        }
    }
}

fn err(message: String) -> ThresholdError {
    ThresholdError {
        in_key: false,
        offset: 0,
        message,
    }
}

/// Parses `key: expression` (the key may hold `{op:NAME}`).
pub fn parse_line(line: &str) -> Result<CompareRule, ThresholdError> {
    let from = line.find('}').map_or(0, |i| i + 1);
    let colon = line[from..].find(':').map(|i| i + from).ok_or_else(|| {
        err(format!(
            "`{line}`: write `metric: aggregation < baseline …`"
        ))
    })?;
    parse(&line[..colon], &line[colon + 1..])
}

/// Parses one rule expression for `key`.
pub fn parse(key: &str, expr: &str) -> Result<CompareRule, ThresholdError> {
    let source = format!("{}: {}", key.trim(), expr.trim());
    let (i, comparison, len) = Comparison::find(expr).ok_or_else(|| {
        err(format!(
            "`{}`: missing a comparison (<, <=, >, >=, ==, !=)",
            expr.trim()
        ))
    })?;
    let agg = expr[..i].trim();
    // The threshold parser checks the key and that the aggregation fits its metric; the value
    // 0 is valid for every metric and unit.
    let left = threshold::parse(key, &format!("{agg} {} 0", comparison.as_str()))?;
    let rhs = expr[i + len..].trim();
    let rest = rhs.strip_prefix("baseline").ok_or_else(|| {
        err(format!(
            "`{rhs}`: the right side starts with `baseline` (e.g. `baseline * 1.10`, `baseline + 5ms`)"
        ))
    })?;
    let rest = rest.trim();
    let bound = if rest.is_empty() {
        Bound::Times(1.0)
    } else if let Some(f) = rest.strip_prefix('*') {
        let f = f.trim();
        let v: f64 = f
            .parse()
            .map_err(|_| err(format!("`{f}`: a factor after `*` is a plain number")))?;
        if !(v.is_finite() && v >= 0.0) {
            return Err(err(format!("`{f}`: the factor must be 0 or more")));
        }
        Bound::Times(v)
    } else if let Some((sign, d)) = rest
        .strip_prefix('+')
        .map(|d| (1.0, d))
        .or_else(|| rest.strip_prefix('-').map(|d| (-1.0, d)))
    {
        Bound::Plus(sign * delta(&left, d.trim())?)
    } else {
        return Err(err(format!(
            "`{rest}`: after `baseline` write `* FACTOR`, `+ DELTA` or `- DELTA`"
        )));
    };
    Ok(CompareRule {
        source,
        left,
        comparison,
        bound,
    })
}

/// A `+`/`-` amount in the metric's unit: ms for times, a 0..1 share for fraction rates.
fn delta(left: &Threshold, s: &str) -> Result<f64, ThresholdError> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = (&s[..split], s[split..].trim());
    let n: f64 = num
        .parse()
        .map_err(|_| err(format!("`{s}`: expected a number with an optional unit")))?;
    let time = left.metric.is_time();
    let share = left.aggregation == Aggregation::Rate
        && left.metric != threshold::ThresholdMetric::Requests;
    Ok(match unit {
        "" => n,
        "ms" if time => n,
        "s" if time => n * 1000.0,
        "us" if time => n / 1000.0,
        "%" if share => n / 100.0,
        "/s" if !time && !share && left.aggregation == Aggregation::Rate => n,
        u => {
            return Err(err(format!(
                "unit `{u}` does not fit `{}` here",
                left.metric.as_str()
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ThresholdMetric;

    #[test]
    fn parses_factors_and_deltas_in_the_metrics_unit() {
        let r = parse_line("response_time: p(95) < baseline * 1.10").unwrap();
        assert_eq!(r.left.metric, ThresholdMetric::ResponseTime);
        assert_eq!(r.left.aggregation, Aggregation::Percentile(95.0));
        assert_eq!(
            (r.comparison, r.bound),
            (Comparison::Lt, Bound::Times(1.10))
        );
        assert!((r.bound_for(10.0) - 11.0).abs() < 1e-9);
        let r = parse_line("errors: rate < baseline + 0.5%").unwrap();
        assert_eq!(r.bound, Bound::Plus(0.005));
        let r = parse_line("service_time{op:create}: p(99) <= baseline + 0.02s").unwrap();
        assert_eq!(r.left.op.as_deref(), Some("create"));
        assert_eq!(r.bound, Bound::Plus(20.0));
        let r = parse_line("requests: rate >= baseline - 2/s").unwrap();
        assert_eq!((r.comparison, r.bound), (Comparison::Ge, Bound::Plus(-2.0)));
        assert_eq!(
            parse_line("dropped: count <= baseline").unwrap().bound,
            Bound::Times(1.0)
        );
    }

    #[test]
    fn precise_errors() {
        let e = |s: &str| parse_line(s).expect_err(s).message;
        assert_eq!(
            e("respons_time: p(95) < baseline"),
            "unknown metric `respons_time`, did you mean `response_time`?"
        );
        assert_eq!(
            e("errors: p(95) < baseline"),
            "`p(95)` does not apply to `errors` (use rate or count)"
        );
        assert_eq!(
            e("errors: rate < 0.01"),
            "`0.01`: the right side starts with `baseline` (e.g. `baseline * 1.10`, `baseline + 5ms`)"
        );
        assert_eq!(
            e("errors: rate < baseline + 5ms"),
            "unit `ms` does not fit `errors` here"
        );
        assert_eq!(
            e("response_time: p(95) < baseline * 10%"),
            "`10%`: a factor after `*` is a plain number"
        );
        assert_eq!(
            e("response_time: p(95) < baseline / 2"),
            "`/ 2`: after `baseline` write `* FACTOR`, `+ DELTA` or `- DELTA`"
        );
    }
}
