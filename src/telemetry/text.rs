//! Text expositions of the metric model: Prometheus text 0.0.4 (what `promtool check metrics`
//! and the Pushgateway read) and OpenMetrics 1.0 (what Prometheus asks for, the only one that
//! carries exemplars).
//!
//! Written here rather than with prometheus-client's encoder because that encoder writes only
//! OpenMetrics, and its `Exemplar` can only be created by its own per-observation metrics —
//! a collector that publishes HdrHistogram buckets cannot attach one.

use std::fmt::Write;

use super::metrics::{BUCKETS, Family, Kind, Series, Value};

pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Prometheus,
    OpenMetrics,
}

impl Format {
    /// Picks OpenMetrics when the `Accept` header names it (Prometheus does by default).
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => PROMETHEUS_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// Renders the families in `format`.
pub fn render(families: &[Family], format: Format) -> String {
    let mut out = String::with_capacity(8 * 1024);
    for f in families {
        // A family without series is legal but promtool and some parsers dislike bare
        // metadata; leave it out.
        if f.series.is_empty() {
            continue;
        }
        let (family_name, ty) = match (f.kind, format) {
            (Kind::Counter, Format::Prometheus) => (format!("{}_total", f.name), "counter"),
            (Kind::Counter, Format::OpenMetrics) => (f.name.to_string(), "counter"),
            (Kind::Gauge, _) => (f.name.to_string(), "gauge"),
            (Kind::Histogram, _) => (f.name.to_string(), "histogram"),
        };
        let _ = writeln!(out, "# HELP {family_name} {}", escape_help(f.help));
        let _ = writeln!(out, "# TYPE {family_name} {ty}");
        for s in &f.series {
            write_series(&mut out, f, s, format);
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

fn write_series(out: &mut String, f: &Family, s: &Series, format: Format) {
    match &s.value {
        Value::Number(v) => {
            let name = if f.kind == Kind::Counter {
                format!("{}_total", f.name)
            } else {
                f.name.to_string()
            };
            let _ = writeln!(out, "{name}{} {}", labels(&s.labels, None), number(*v));
        }
        Value::Histogram(b) => {
            let exemplar_at = b
                .exemplar
                .as_ref()
                .map(|e| (super::metrics::Buckets::bucket_of(e.value), e));
            for i in 0..=BUCKETS.len() {
                let (le, n) = match BUCKETS.get(i) {
                    Some(le) => (number(*le), b.cumulative[i]),
                    None => ("+Inf".to_string(), b.count),
                };
                let _ = write!(out, "{}_bucket{} {n}", f.name, labels(&s.labels, Some(&le)));
                if format == Format::OpenMetrics
                    && let Some((at, e)) = exemplar_at
                    && at == i
                {
                    let _ = write!(
                        out,
                        " # {{trace_id=\"{}\"}} {}",
                        escape_value(&e.trace_id),
                        number(e.value)
                    );
                }
                out.push('\n');
            }
            let _ = writeln!(
                out,
                "{}_sum{} {}",
                f.name,
                labels(&s.labels, None),
                number(b.sum)
            );
            let _ = writeln!(
                out,
                "{}_count{} {}",
                f.name,
                labels(&s.labels, None),
                b.count
            );
        }
    }
}

fn labels(l: &[(&'static str, String)], le: Option<&str>) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape_value(v));
    }
    if let Some(le) = le {
        let _ = write!(out, ",le=\"{le}\"");
    }
    out.push('}');
    out
}

/// Floats as both formats and Prometheus's `le` convention spell them (`1`, `0.25`, `+Inf`).
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        }
    } else {
        format!("{v}")
    }
}

fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}
