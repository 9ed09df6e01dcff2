//! `report compare BASELINE NEW`: per-operation deltas of two reports (rates, error rates,
//! response and service time percentiles) as a text table or as Markdown for a pull-request
//! comment, and the regression rules (`plan::compare`) judged on the two runs like thresholds
//! (hence here, beside them). Values come from the reports' exact whole-run histograms, so
//! merged reports compare like single ones.

use std::fmt::Write as _;

use crate::plan::compare::CompareRule;
use crate::plan::{Aggregation, ThresholdMetric};
use crate::report::{OpReport, Report};

/// One rule judged on the two runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleResult {
    pub source: String,
    pub baseline: Option<f64>,
    pub new: Option<f64>,
    pub bound: Option<f64>,
    pub passed: bool,
    /// Why it failed or was not compared; empty when it passed normally.
    pub message: String,
    /// "ms" for times, "%" for shares (values are 0..1), else "".
    pub unit: &'static str,
}

/// One line of the delta table.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub op: String,
    pub metric: &'static str,
    pub baseline: Option<f64>,
    pub new: Option<f64>,
    pub unit: &'static str,
}

/// The comparison of two reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub scenario: String,
    pub baseline_run: String,
    pub new_run: String,
    pub deltas: Vec<Delta>,
    pub rules: Vec<RuleResult>,
}

impl Comparison {
    /// Any rule failed: a regression (exit 99).
    pub fn regressed(&self) -> bool {
        self.rules.iter().any(|r| !r.passed)
    }
}

fn error_rate(r: &OpReport) -> Option<f64> {
    let errors: u64 = r.counts.errors.iter().sum();
    (r.counts.requests > 0).then(|| errors as f64 / r.counts.requests as f64)
}

fn op_deltas(out: &mut Vec<Delta>, op: &str, base: Option<&OpReport>, new: Option<&OpReport>) {
    type Get = fn(&OpReport) -> Option<f64>;
    let has = |r: &OpReport| r.counts.requests > 0;
    let rows: [(&'static str, &'static str, Get); 8] = [
        ("rate", "/s", |r| Some(r.rate)),
        ("error rate", "%", error_rate),
        ("response p50", "ms", |r| Some(r.response_time_ms.p50)),
        ("response p95", "ms", |r| Some(r.response_time_ms.p95)),
        ("response p99", "ms", |r| Some(r.response_time_ms.p99)),
        ("service p50", "ms", |r| Some(r.service_time_ms.p50)),
        ("service p95", "ms", |r| Some(r.service_time_ms.p95)),
        ("service p99", "ms", |r| Some(r.service_time_ms.p99)),
    ];
    for (i, (metric, unit, get)) in rows.into_iter().enumerate() {
        // Percentiles of an operation without requests are not zero, they do not exist.
        let value = |r: Option<&OpReport>| r.filter(|r| i == 0 || has(r)).and_then(get);
        out.push(Delta {
            op: op.to_string(),
            metric,
            baseline: value(base),
            new: value(new),
            unit,
        });
    }
}

fn find<'a>(r: &'a Report, name: &str) -> Option<&'a OpReport> {
    r.ops.iter().find(|(o, _)| o == name).map(|(_, x)| x)
}

fn unit_of(rule: &CompareRule) -> &'static str {
    let l = &rule.left;
    if l.metric.is_time() {
        "ms"
    } else if l.aggregation == Aggregation::Rate && l.metric != ThresholdMetric::Requests {
        "%"
    } else {
        ""
    }
}

fn judge(rule: &CompareRule, base: &Report, new: &Report) -> RuleResult {
    let observe = |r: &Report| super::whole_run(&rule.left, r, "");
    let (b, n) = (observe(base), observe(new));
    let mut res = RuleResult {
        source: rule.source.clone(),
        baseline: b.observed,
        new: n.observed,
        bound: b.observed.map(|v| rule.bound_for(v)),
        passed: false,
        message: String::new(),
        unit: unit_of(rule),
    };
    match (n.observed, res.bound) {
        (None, _) => res.message = format!("no value in the new run: {}", n.message),
        (Some(_), None) => {
            // Nothing to regress from (an operation new in this run): not a failure.
            res.passed = true;
            res.message = "no baseline value: not compared".into();
        }
        (Some(v), Some(bound)) => {
            res.passed = rule.comparison.holds(v, bound);
            if !res.passed {
                res.message = format!(
                    "regression: {} is not {} {}",
                    show(Some(v), res.unit),
                    rule.comparison.as_str(),
                    show(Some(bound), res.unit)
                );
            }
        }
    }
    res
}

/// Compares `new` against `baseline`; `rules` decide whether it is a regression.
pub fn compare(baseline: &Report, new: &Report, rules: &[CompareRule]) -> Comparison {
    let mut names: Vec<&str> = new.ops.iter().map(|(n, _)| n.as_str()).collect();
    for (n, _) in &baseline.ops {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    let mut deltas = Vec::new();
    for n in &names {
        op_deltas(&mut deltas, n, find(baseline, n), find(new, n));
    }
    op_deltas(
        &mut deltas,
        "all",
        Some(&baseline.totals),
        Some(&new.totals),
    );
    Comparison {
        scenario: new.scenario.clone(),
        baseline_run: baseline.run_id.clone(),
        new_run: new.run_id.clone(),
        deltas,
        rules: rules.iter().map(|r| judge(r, baseline, new)).collect(),
    }
}

fn show(v: Option<f64>, unit: &str) -> String {
    match (v, unit) {
        (None, _) => "–".into(),
        (Some(v), "%") => format!("{:.2}%", v * 100.0),
        (Some(v), "ms") => format!("{v:.2} ms"),
        (Some(v), "/s") => format!("{v:.2}/s"),
        (Some(v), _) => format!("{v:.4}"),
    }
}

/// The change: relative for rates and times, in percentage points for shares.
fn change(d: &Delta) -> String {
    match (d.baseline, d.new) {
        (Some(b), Some(n)) if d.unit == "%" => format!("{:+.2} pp", (n - b) * 100.0),
        (Some(b), Some(n)) if b != 0.0 => format!("{:+.1}%", (n - b) / b * 100.0),
        (Some(_), Some(0.0)) => "±0.0%".into(),
        (Some(_), Some(_)) => "new > 0".into(),
        (None, Some(_)) => "new".into(),
        (Some(_), None) => "gone".into(),
        (None, None) => "–".into(),
    }
}

fn verdict_line(c: &Comparison) -> String {
    let failed = c.rules.iter().filter(|r| !r.passed).count();
    if c.rules.is_empty() {
        "no regression rules given".into()
    } else if failed == 0 {
        format!("no regression ({} rule(s) passed)", c.rules.len())
    } else {
        format!("REGRESSION: {failed} of {} rule(s) failed", c.rules.len())
    }
}

/// Plain text: aligned columns for a terminal or a CI log.
pub fn text(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "trafficgen compare: scenario {} · baseline {} → new {}",
        c.scenario, c.baseline_run, c.new_run
    );
    let _ = writeln!(
        out,
        "\n{:<14} {:<13} {:>12} {:>12} {:>10}",
        "operation", "metric", "baseline", "new", "change"
    );
    for d in &c.deltas {
        let _ = writeln!(
            out,
            "{:<14} {:<13} {:>12} {:>12} {:>10}",
            d.op,
            d.metric,
            show(d.baseline, d.unit),
            show(d.new, d.unit),
            change(d)
        );
    }
    if !c.rules.is_empty() {
        out.push_str("\nrules:\n");
        for r in &c.rules {
            let _ = writeln!(
                out,
                "  {} {}  baseline {}  new {}  bound {}{}",
                if r.passed { '✓' } else { '✗' },
                r.source,
                show(r.baseline, r.unit),
                show(r.new, r.unit),
                show(r.bound, r.unit),
                if r.message.is_empty() {
                    String::new()
                } else {
                    format!("\n      {}", r.message)
                }
            );
        }
    }
    let _ = writeln!(out, "\n{}", verdict_line(c));
    out
}

/// `|` and newlines would break a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// GitHub-flavoured Markdown for a pull-request comment: verdict, rules, then the deltas.
pub fn markdown(c: &Comparison) -> String {
    let mut out = String::new();
    let mark = if c.regressed() { "❌" } else { "✅" };
    let _ = writeln!(
        out,
        "### {mark} trafficgen compare: `{}` — {}\n",
        cell(&c.scenario),
        verdict_line(c)
    );
    let _ = writeln!(
        out,
        "Baseline run `{}` → new run `{}`.\n",
        cell(&c.baseline_run),
        cell(&c.new_run)
    );
    if !c.rules.is_empty() {
        out.push_str("| | rule | baseline | new | bound | note |\n|---|---|---:|---:|---:|---|\n");
        for r in &c.rules {
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} | {} | {} |",
                if r.passed { "✅" } else { "❌" },
                cell(&r.source),
                show(r.baseline, r.unit),
                show(r.new, r.unit),
                show(r.bound, r.unit),
                cell(&r.message)
            );
        }
        out.push('\n');
    }
    out.push_str("| operation | metric | baseline | new | change |\n|---|---|---:|---:|---:|\n");
    for d in &c.deltas {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(&d.op),
            d.metric,
            show(d.baseline, d.unit),
            show(d.new, d.unit),
            change(d)
        );
    }
    out.push_str(
        "\nResponse time counts from the intended start (coordinated omission corrected), \
         service time from the actual send.\n",
    );
    out
}
