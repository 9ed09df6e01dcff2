//! The chart data of the HTML report: the per-second timeline turned into uPlot's column
//! layout (one x column, one column per series), the fault windows as bands and the failing
//! windows of windowed thresholds as marks, all as one JSON value the page script draws.
//!
//! The series are computed here, not in the page, so what is drawn is testable in Rust and the
//! script stays a generic "draw these columns" loop.

use serde::Serialize;

use crate::plan::{ThresholdMetric, threshold};
use crate::recorder::ErrorKind;
use crate::report::{Report, ThresholdResult, TimelinePoint};

/// One line of a chart. `None` values are gaps (a second without samples has no percentile).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub label: String,
    pub color: &'static str,
    pub values: Vec<Option<f64>>,
    /// Drawn dashed (targets, service time beside response time).
    pub dash: bool,
}

/// One chart: an id the page and the tests find it by, a title, the y unit and its lines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chart {
    pub id: &'static str,
    pub title: &'static str,
    pub unit: &'static str,
    pub series: Vec<Series>,
}

/// A shaded time range: a fault window (every chart) or a threshold's failing window (the
/// chart of its metric only, `chart` = that chart's id).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Band {
    pub start_s: f64,
    pub end_s: f64,
    pub label: String,
    /// "latency" | "error" for faults, "threshold" for a failing window.
    pub kind: String,
    pub chart: Option<&'static str>,
}

/// Everything the page script draws.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChartData {
    /// Seconds since the start of the load (end of each one-second bucket).
    pub t: Vec<f64>,
    pub charts: Vec<Chart>,
    pub bands: Vec<Band>,
    /// Threshold bounds drawn as dashed horizontal lines (latency thresholds on all operations
    /// or one, in ms): drawn when inside the chart's value range.
    pub limits: Vec<Limit>,
    /// Actions of the control API (a changed rate, a pause, an annotation): a dotted vertical
    /// line on every chart.
    pub marks: Vec<Mark>,
}

/// A control action on the time axis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mark {
    pub t_s: f64,
    pub label: String,
}

/// A threshold's bound on a chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limit {
    pub chart: &'static str,
    pub value: f64,
    pub label: String,
    pub passed: bool,
}

const BLUE: &str = "#2f6fdf";
const GREEN: &str = "#1a9850";
const ORANGE: &str = "#e66101";
const PURPLE: &str = "#7b3294";
const GREY: &str = "#555555";
const RED: &str = "#d7191c";
const KIND_COLORS: [&str; ErrorKind::COUNT] = [
    "#8c510a", "#bf812d", "#35978f", "#01665e", ORANGE, RED, "#762a83", "#000000", "#c51b7d",
    "#4d9221", "#2166ac", "#b35806",
];

fn col(points: &[TimelinePoint], f: impl Fn(&TimelinePoint) -> f64) -> Vec<Option<f64>> {
    points.iter().map(|p| Some(f(p))).collect()
}

/// A latency column: a gap where the second had no completed request.
fn lat(points: &[TimelinePoint], f: impl Fn(&TimelinePoint) -> f64) -> Vec<Option<f64>> {
    points
        .iter()
        .map(|p| (p.requests > 0).then(|| f(p)))
        .collect()
}

fn series(label: &str, color: &'static str, dash: bool, values: Vec<Option<f64>>) -> Series {
    Series {
        label: label.to_string(),
        color,
        values,
        dash,
    }
}

/// `all_kinds`: a series per error kind even if it never happened (the live dashboard, whose
/// charts must keep the same series as points arrive); else only the kinds seen.
fn charts(p: &[TimelinePoint], all_kinds: bool) -> Vec<Chart> {
    let rate = Chart {
        id: "rate",
        title: "Request rate: target vs achieved",
        unit: "req/s",
        series: vec![
            series("target", GREY, true, col(p, |x| x.target_rate)),
            series("achieved", BLUE, false, col(p, |x| x.requests as f64)),
        ],
    };
    let latency = Chart {
        id: "latency",
        title: "Response time (from the intended start) and service time (from the send)",
        unit: "ms",
        series: vec![
            series("response p50", GREEN, false, lat(p, |x| x.p50_ms)),
            series("response p95", ORANGE, false, lat(p, |x| x.p95_ms)),
            series("response p99", RED, false, lat(p, |x| x.p99_ms)),
            series("service p50", "#74add1", true, lat(p, |x| x.service_p50_ms)),
            series("service p95", "#4575b4", true, lat(p, |x| x.service_p95_ms)),
            series("service p99", "#313695", true, lat(p, |x| x.service_p99_ms)),
        ],
    };
    let lag = Chart {
        id: "lag",
        title: "Schedule lag (actual send − intended start)",
        unit: "ms",
        series: vec![
            series("lag p99", PURPLE, false, lat(p, |x| x.lag_p99_ms)),
            series("lag max", GREY, true, lat(p, |x| x.lag_max_ms)),
        ],
    };
    // Only the kinds that happened, so the legend stays short; the total always.
    let mut error_series = vec![series(
        "errors (all)",
        "#333333",
        true,
        col(p, |x| x.errors as f64),
    )];
    for k in ErrorKind::ALL {
        let i = k.index();
        if all_kinds || p.iter().any(|x| x.errors_by_kind[i] > 0) {
            error_series.push(series(
                k.as_str(),
                KIND_COLORS[i],
                false,
                col(p, |x| x.errors_by_kind[i] as f64),
            ));
        }
    }
    error_series.push(series(
        "dropped",
        PURPLE,
        false,
        col(p, |x| x.dropped as f64),
    ));
    let errors = Chart {
        id: "errors",
        title: "Errors by kind and dropped arrivals",
        unit: "per s",
        series: error_series,
    };
    let concurrency = Chart {
        id: "concurrency",
        title: "In flight and virtual users",
        unit: "count",
        series: vec![
            series("in flight", BLUE, false, col(p, |x| x.in_flight as f64)),
            series("VUs", GREEN, true, col(p, |x| x.vus as f64)),
        ],
    };
    vec![rate, latency, lag, errors, concurrency]
}

/// The chart a threshold's metric is drawn on (`ThresholdMetric::as_str` names).
fn chart_of_metric(metric: &str) -> &'static str {
    match metric {
        "response_time" | "service_time" => "latency",
        "schedule_lag" => "lag",
        "requests" => "rate",
        _ => "errors",
    }
}

/// The failing window of a windowed threshold: the verdict's `window`, or for results of
/// `report merge` (which name only the window's end: "in the window ending at 42s") that end
/// minus the threshold's window length.
pub fn failing_window(result: &ThresholdResult) -> Option<(f64, f64)> {
    if result.passed {
        return None;
    }
    if let Some([a, b]) = result.window {
        return Some((a, b));
    }
    let msg = &result.message;
    let i = msg.find(" in the window ending at ")?;
    let rest = &msg[i + " in the window ending at ".len()..];
    let end: f64 = rest.split('s').next()?.parse().ok()?;
    let w = threshold::parse_line(&result.source).ok()?.window?;
    Some(((end - w.as_secs_f64()).max(0.0), end))
}

/// The chart data of a report (merged reports included: their timeline is per-second sums).
pub fn chart_data(r: &Report) -> ChartData {
    chart_data_with(r, false)
}

/// `chart_data` with a series for every error kind (see `charts`).
pub fn chart_data_with(r: &Report, all_kinds: bool) -> ChartData {
    // A window that could not be applied did not happen: no band.
    let mut bands: Vec<Band> = r
        .faults
        .iter()
        .filter(|f| f.failed.is_none())
        .map(|f| Band {
            start_s: f.start_s,
            end_s: f.end_s,
            label: format!("{} fault ({})", f.kind, f.via),
            kind: f.kind.clone(),
            chart: None,
        })
        .collect();
    for t in &r.thresholds {
        if let Some((start_s, end_s)) = failing_window(t) {
            let metric = threshold::parse_line(&t.source).map_or("errors", |p| p.metric.as_str());
            bands.push(Band {
                start_s,
                end_s,
                label: format!("✗ {}", t.source),
                kind: "threshold".into(),
                chart: Some(chart_of_metric(metric)),
            });
        }
    }
    // Response and service time bounds go on the latency chart, lag bounds on the lag chart;
    // rates and counts have no per-second line that matches their whole-run meaning.
    let limits = r
        .thresholds
        .iter()
        .filter_map(|t| {
            let p = threshold::parse_line(&t.source).ok()?;
            let chart = match p.metric {
                ThresholdMetric::ResponseTime | ThresholdMetric::ServiceTime => "latency",
                ThresholdMetric::ScheduleLag => "lag",
                _ => return None,
            };
            Some(Limit {
                chart,
                value: p.value,
                label: format!("{} {}", if t.passed { "✓" } else { "✗" }, t.source),
                passed: t.passed,
            })
        })
        .collect();
    let marks = r
        .control
        .iter()
        .map(|e| Mark {
            t_s: e.t_s,
            label: e.action.clone(),
        })
        .collect();
    ChartData {
        t: r.timeline.iter().map(|p| p.t as f64).collect(),
        charts: charts(&r.timeline, all_kinds),
        bands,
        limits,
        marks,
    }
}
