//! Threshold expressions (`p(95)<300`, `rate<0.01`, `count>100`), parsed once into `Threshold`.
//!
//! Owns the grammar and the parsed form; evaluation against recorded data belongs to `verdict`.
//! Reports keep each threshold's `source` line; `report merge` parses it again here
//! (`parse_line`), so there is one threshold type and one grammar.
//!
//! In a scenario, thresholds are a mapping from a key to one expression or a list of them
//! (each a string or `{threshold, abort_on_fail, delay_abort_eval}`); on one line (the report,
//! metric labels, `parse_line`) they read `key: expression`.
//!
//! ```text
//! line        := key ws* ":" ws* expression
//! key         := metric [ "{" ws* "op" ws* ":" ws* NAME ws* "}" ]
//! metric      := "response_time" | "service_time" | "schedule_lag"     (times, ms)
//!              | "errors" | "checks" | "dropped" | "requests"          (counts and rates)
//! expression  := aggregation ws* comparison ws* NUMBER [unit] [ ws+ "over" ws+ DURATION ]
//! aggregation := "p(" NUMBER ")" | "avg" | "min" | "max" | "med"        (time metrics)
//!              | "rate" | "count"                                       (the others)
//! comparison  := "<=" | "<" | ">=" | ">" | "==" | "!="
//! unit        := "us" | "ms" | "s"       time metrics; no unit = ms
//!              | "%"                     rates that are fractions (errors, checks, dropped)
//!              | "/s"                    requests rate (per second)
//! ```
//!
//! `rate` means: errors = failed share of requests, checks = passed share of checks, dropped
//! = dropped share of arrivals, requests = completed requests per second. `count` of checks
//! counts failed checks. `over 1m`: the condition must hold in every 1-minute window of the
//! per-second timeline (sliding), not only over the whole run.

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

impl std::fmt::Display for Aggregation {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Aggregation::Percentile(p) => write!(f, "p({p})"),
            Aggregation::Avg => f.write_str("avg"),
            Aggregation::Min => f.write_str("min"),
            Aggregation::Max => f.write_str("max"),
            Aggregation::Med => f.write_str("med"),
            Aggregation::Rate => f.write_str("rate"),
            Aggregation::Count => f.write_str("count"),
        }
    }
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

/// Names of the metrics, as written in scenarios.
pub const METRICS: &[&str] = &[
    "response_time",
    "service_time",
    "schedule_lag",
    "errors",
    "checks",
    "dropped",
    "requests",
];

impl ThresholdMetric {
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdMetric::ResponseTime => "response_time",
            ThresholdMetric::ServiceTime => "service_time",
            ThresholdMetric::ScheduleLag => "schedule_lag",
            ThresholdMetric::Errors => "errors",
            ThresholdMetric::Checks => "checks",
            ThresholdMetric::Dropped => "dropped",
            ThresholdMetric::Requests => "requests",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "response_time" => ThresholdMetric::ResponseTime,
            "service_time" => ThresholdMetric::ServiceTime,
            "schedule_lag" => ThresholdMetric::ScheduleLag,
            "errors" => ThresholdMetric::Errors,
            "checks" => ThresholdMetric::Checks,
            "dropped" => ThresholdMetric::Dropped,
            "requests" => ThresholdMetric::Requests,
            _ => return None,
        })
    }

    /// Whether values are latencies in milliseconds.
    pub fn is_time(self) -> bool {
        matches!(
            self,
            ThresholdMetric::ResponseTime
                | ThresholdMetric::ServiceTime
                | ThresholdMetric::ScheduleLag
        )
    }
}

impl Comparison {
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
            Comparison::Eq => "==",
            Comparison::Ne => "!=",
        }
    }

    /// Finds the first comparison operator in `s`: (byte offset, operator, its length).
    pub fn find(s: &str) -> Option<(usize, Comparison, usize)> {
        let i = s.find(['<', '>', '=', '!'])?;
        let two = s.get(i..i + 2);
        let (c, len) = match (two, &s[i..i + 1]) {
            (Some("<="), _) => (Comparison::Le, 2),
            (Some(">="), _) => (Comparison::Ge, 2),
            (Some("=="), _) => (Comparison::Eq, 2),
            (Some("!="), _) => (Comparison::Ne, 2),
            (_, "<") => (Comparison::Lt, 1),
            (_, ">") => (Comparison::Gt, 1),
            _ => return None,
        };
        Some((i, c, len))
    }
}

/// Why a threshold does not parse: the message and where (char offset; in the key when
/// `in_key`, else in the expression).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ThresholdError {
    pub in_key: bool,
    pub offset: usize,
    pub message: String,
}

fn key_err(offset: usize, message: String) -> ThresholdError {
    ThresholdError {
        in_key: true,
        offset,
        message,
    }
}

fn expr_err(offset: usize, message: String) -> ThresholdError {
    ThresholdError {
        in_key: false,
        offset,
        message,
    }
}

/// Parses a key (`response_time{op:create}`) into the metric and the operation filter.
pub fn parse_key(key: &str) -> Result<(ThresholdMetric, Option<String>), ThresholdError> {
    let (name, filter) = match key.find('{') {
        Some(i) => (&key[..i], Some(i)),
        None => (key, None),
    };
    let name = name.trim();
    let metric = ThresholdMetric::from_name(name).ok_or_else(|| {
        let hint = match crate::scenario::suggest::suggest(name, METRICS) {
            Some(s) => format!(", did you mean `{s}`?"),
            None => format!(" (metrics: {})", METRICS.join(", ")),
        };
        key_err(0, format!("unknown metric `{name}`{hint}"))
    })?;
    let Some(open) = filter else {
        return Ok((metric, None));
    };
    let inner = key[open + 1..]
        .strip_suffix('}')
        .ok_or_else(|| key_err(open, format!("`{key}`: the filter must end with `}}`")))?;
    let (k, v) = inner.split_once(':').ok_or_else(|| {
        key_err(
            open + 1,
            format!("filter `{{{inner}}}`: write `{{op:NAME}}`"),
        )
    })?;
    if k.trim() != "op" {
        return Err(key_err(
            open + 1,
            format!("filter `{}`: only `op` is supported", k.trim()),
        ));
    }
    let op = v.trim().trim_matches(['"', '\'']);
    if op.is_empty() || op.contains([',', ':']) {
        return Err(key_err(
            open + 1,
            format!("filter `{{{inner}}}`: name one operation, `{{op:NAME}}`"),
        ));
    }
    Ok((metric, Some(op.to_string())))
}

/// Parses one expression for `key`. `abort_on_fail`/`delay_abort_eval` start off.
pub fn parse(key: &str, expr: &str) -> Result<Threshold, ThresholdError> {
    let (metric, op) = parse_key(key)?;
    let source = format!("{}: {}", key.trim(), expr.trim());
    let (i, comparison, len) = Comparison::find(expr).ok_or_else(|| {
        expr_err(
            0,
            format!("`{expr}`: missing a comparison (<, <=, >, >=, ==, !=)"),
        )
    })?;
    let agg_text = expr[..i].trim();
    let aggregation = parse_aggregation(agg_text)?;
    check_allowed(metric, aggregation, agg_text)?;
    let rhs_start = i + len;
    let rhs = &expr[rhs_start..];
    let (value_text, window) = match rhs.find(" over ") {
        Some(j) => {
            let w = rhs[j + 6..].trim();
            let d: crate::scenario::units::Duration = w
                .parse()
                .map_err(|m: String| expr_err(rhs_start + j + 6, format!("window: {m}")))?;
            if d.0.is_zero() {
                return Err(expr_err(
                    rhs_start + j + 6,
                    "the window must be longer than 0".into(),
                ));
            }
            (&rhs[..j], Some(d.0))
        }
        None => (rhs, None),
    };
    let value = parse_value(metric, aggregation, value_text.trim(), rhs_start)?;
    Ok(Threshold {
        source,
        metric,
        op,
        aggregation,
        comparison,
        value,
        window,
        abort_on_fail: false,
        delay_abort_eval: Duration::ZERO,
    })
}

/// Parses `key: expression` on one line.
pub fn parse_line(line: &str) -> Result<Threshold, ThresholdError> {
    // The key may contain `:` inside `{op:x}`; split at the first `:` after any `}`.
    let from = line.find('}').map_or(0, |i| i + 1);
    let colon = line[from..]
        .find(':')
        .map(|i| i + from)
        .ok_or_else(|| key_err(0, format!("`{line}`: write `metric: expression`")))?;
    parse(&line[..colon], &line[colon + 1..])
}

fn parse_aggregation(s: &str) -> Result<Aggregation, ThresholdError> {
    Ok(match s {
        "avg" => Aggregation::Avg,
        "min" => Aggregation::Min,
        "max" => Aggregation::Max,
        "med" => Aggregation::Med,
        "rate" => Aggregation::Rate,
        "count" => Aggregation::Count,
        "" => {
            return Err(expr_err(
                0,
                "missing the aggregation before the comparison (e.g. `p(95)`)".into(),
            ));
        }
        _ => {
            let inner = s
                .strip_prefix("p(")
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| {
                    let known = ["avg", "min", "max", "med", "rate", "count"];
                    let percentile = s.strip_prefix('p').filter(|n| n.parse::<f64>().is_ok());
                    let hint = match (percentile, crate::scenario::suggest::suggest(s, &known)) {
                        (Some(n), _) => format!(", did you mean `p({n})`?"),
                        (None, Some(k)) => format!(", did you mean `{k}`?"),
                        (None, None) => " (use p(N), avg, min, max, med, rate or count)".into(),
                    };
                    expr_err(0, format!("unknown aggregation `{s}`{hint}"))
                })?;
            let n: f64 = inner
                .trim()
                .parse()
                .map_err(|_| expr_err(2, format!("`{s}`: `{inner}` is not a number")))?;
            if !(n > 0.0 && n <= 100.0) {
                return Err(expr_err(
                    2,
                    format!("`{s}`: the percentile must be in (0, 100]"),
                ));
            }
            Aggregation::Percentile(n)
        }
    })
}

fn check_allowed(
    metric: ThresholdMetric,
    agg: Aggregation,
    text: &str,
) -> Result<(), ThresholdError> {
    let ok = match agg {
        Aggregation::Rate | Aggregation::Count => !metric.is_time(),
        _ => metric.is_time(),
    };
    if ok {
        return Ok(());
    }
    let allowed = if metric.is_time() {
        "p(N), avg, min, max or med"
    } else {
        "rate or count"
    };
    Err(expr_err(
        0,
        format!(
            "`{text}` does not apply to `{}` (use {allowed})",
            metric.as_str()
        ),
    ))
}

fn parse_value(
    metric: ThresholdMetric,
    agg: Aggregation,
    s: &str,
    at: usize,
) -> Result<f64, ThresholdError> {
    let split = s
        .find(|c: char| {
            !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E')
        })
        .unwrap_or(s.len());
    let (num, unit) = (&s[..split], s[split..].trim());
    if num.is_empty() {
        return Err(expr_err(
            at,
            format!("missing the value after the comparison (got `{s}`)"),
        ));
    }
    let n: f64 = num
        .parse()
        .map_err(|_| expr_err(at, format!("`{num}` is not a number")))?;
    let fraction_rate = agg == Aggregation::Rate && metric != ThresholdMetric::Requests;
    let scaled = match unit {
        "" => n,
        "ms" if metric.is_time() => n,
        "s" if metric.is_time() => n * 1000.0,
        "us" if metric.is_time() => n / 1000.0,
        "%" if fraction_rate => n / 100.0,
        "/s" if agg == Aggregation::Rate && metric == ThresholdMetric::Requests => n,
        u => {
            let allowed = if metric.is_time() {
                "us, ms or s"
            } else if fraction_rate {
                "% or none"
            } else if agg == Aggregation::Rate {
                "/s or none"
            } else {
                "none"
            };
            return Err(expr_err(
                at + split,
                format!(
                    "unit `{u}` does not fit `{}` (use {allowed})",
                    metric.as_str()
                ),
            ));
        }
    };
    if fraction_rate && !(0.0..=1.0).contains(&scaled) {
        return Err(expr_err(
            at,
            format!(
                "a rate of `{}` is a share: between 0 and 1 (or 0% and 100%)",
                metric.as_str()
            ),
        ));
    }
    Ok(scaled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms() {
        let t = parse("response_time{op:create}", "p(95)<300ms").expect("ok");
        assert_eq!(t.metric, ThresholdMetric::ResponseTime);
        assert_eq!(t.op.as_deref(), Some("create"));
        assert_eq!(t.aggregation, Aggregation::Percentile(95.0));
        assert_eq!(t.comparison, Comparison::Lt);
        assert_eq!(t.value, 300.0);
        assert_eq!(t.source, "response_time{op:create}: p(95)<300ms");
        let t = parse("response_time", "p(99.9) <= 1.5s over 1m").expect("ok");
        assert_eq!(
            (t.value, t.comparison, t.window),
            (1500.0, Comparison::Le, Some(Duration::from_secs(60)))
        );
        let t = parse("errors", "rate<1%").expect("ok");
        assert_eq!((t.aggregation, t.value), (Aggregation::Rate, 0.01));
        let t = parse("requests", "count > 100").expect("ok");
        assert_eq!(
            (t.aggregation, t.comparison, t.value),
            (Aggregation::Count, Comparison::Gt, 100.0)
        );
        let t = parse("requests", "rate>=45/s").expect("ok");
        assert_eq!((t.comparison, t.value), (Comparison::Ge, 45.0));
        let t = parse_line("checks{op: get}: rate>0.99").expect("ok");
        assert_eq!(
            (t.metric, t.op.as_deref(), t.value),
            (ThresholdMetric::Checks, Some("get"), 0.99)
        );
        assert_eq!(parse("service_time", "avg<100").expect("ok").value, 100.0);
        assert_eq!(parse("schedule_lag", "max<=500us").expect("ok").value, 0.5);
        assert_eq!(
            parse("dropped", "count==0").expect("ok").comparison,
            Comparison::Eq
        );
    }

    #[test]
    fn precise_errors() {
        let e = |k: &str, x: &str| parse(k, x).expect_err(x).message;
        assert_eq!(
            e("response_tme", "p(95)<1"),
            "unknown metric `response_tme`, did you mean `response_time`?"
        );
        assert_eq!(
            e("errors", "p(95)<1"),
            "`p(95)` does not apply to `errors` (use rate or count)"
        );
        assert_eq!(
            e("response_time", "rate<1"),
            "`rate` does not apply to `response_time` (use p(N), avg, min, max or med)"
        );
        assert_eq!(
            e("response_time", "p(95) 300"),
            "`p(95) 300`: missing a comparison (<, <=, >, >=, ==, !=)"
        );
        assert_eq!(
            e("response_time", "p(101)<3"),
            "`p(101)`: the percentile must be in (0, 100]"
        );
        assert_eq!(
            e("response_time", "p95<3"),
            "unknown aggregation `p95`, did you mean `p(95)`?"
        );
        assert_eq!(
            e("response_time", "avg<fast"),
            "missing the value after the comparison (got `fast`)"
        );
        assert_eq!(
            e("response_time", "avg<3min"),
            "unit `min` does not fit `response_time` (use us, ms or s)"
        );
        assert_eq!(
            e("errors", "rate<5"),
            "a rate of `errors` is a share: between 0 and 1 (or 0% and 100%)"
        );
        assert_eq!(
            e("errors", "rate<5ms"),
            "unit `ms` does not fit `errors` (use % or none)"
        );
        assert_eq!(
            e("response_time", "avg<3 over 0"),
            "the window must be longer than 0"
        );
        assert_eq!(
            e("response_time{status:500}", "avg<3"),
            "filter `status`: only `op` is supported"
        );
        assert_eq!(
            e("response_time", "<3"),
            "missing the aggregation before the comparison (e.g. `p(95)`)"
        );
    }
}
