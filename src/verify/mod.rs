//! `verify`: observability assertions (PromQL, LogQL, TraceQL, Tempo trace lookup) checked
//! after the run against the generator's ground truth, polling until telemetry has arrived.
//!
//! Owns: query substitution (`RunContext`), ground truth from the `Report`, the comparison with
//! tolerance, and the polling rounds. The HTTP clients and answer parsing live in `clients`.
//! The engine stores the results in the report and exits 100 when one failed;
//! `trafficgen verify REPORT --scenario S` calls the same `run` with the saved report.
//!
//! Real stacks: each backend's URL can be overridden and given headers from the environment
//! (`TRAFFICGEN_<BACKEND>_URL`, `TRAFFICGEN_<BACKEND>_HEADERS`, backends `PROMETHEUS`, `LOKI`,
//! `TEMPO`), and `TRAFFICGEN_VERIFY_BACKENDS=prometheus,…` runs only the assertions of those
//! backends: the others are reported as skipped (not passed) and counted apart in the verdict.
//! A backend that refuses the connection or whose name does not resolve fails its assertions
//! at once with the cause; only answers that may still change (no data yet, 5xx, timeouts) are
//! polled until the deadline.
//!
//! Times: instant queries are evaluated at the end of the run + `EVAL_DELAY` and range queries
//! end there: late enough for the last scrape after the load (the generator's `/metrics` linger,
//! scrape intervals up to a minute), fixed so that re-verifying a report later asks about the
//! same moment, and within Prometheus' 5-minute lookback of the run's last samples. While that
//! moment is still in the future, Prometheus answers with the newest data; polling converges.

use std::time::Duration;

use crate::plan::{
    Assertion, AssertionKind, Expect, Expected, GroundMetric, GroundRef, Tolerance, TraceSet,
    Verify,
};
use crate::recorder::Counts;
use crate::report::{AssertionResult, Report};

pub mod clients;
mod context;
mod select;

pub use context::{PLACEHOLDERS, RunContext, is_placeholder};
pub use select::{BACKENDS_VAR, Selection, backend_of};

/// Instant queries are evaluated this long after the end of the run (see the module doc).
pub const EVAL_DELAY: Duration = Duration::from_secs(60);

/// `promql_delta` takes its "before" value this long before the run's start: a scrape
/// stamped then cannot have seen a request of this run (scrapes are stamped when they start,
/// and the first request leaves after `started_at`).
pub const BEFORE_START: Duration = Duration::from_secs(1);

use clients::{Answer, Clients};

/// Runs every selected assertion, polling each until it passes or `verify.deadline` passes;
/// headers, URL overrides and the backend selection come from the environment.
pub async fn run(verify: &Verify, report: &Report) -> Vec<AssertionResult> {
    let lookup = |k: &str| std::env::var(k).ok();
    let setup =
        Clients::from_lookup(lookup).and_then(|c| Selection::from_lookup(&lookup).map(|s| (c, s)));
    match setup {
        Ok((clients, selection)) => run_selected(verify, report, &clients, &selection).await,
        Err(e) => verify
            .assertions
            .iter()
            .map(|a| failed(a, String::new(), 0, e.clone()))
            .collect(),
    }
}

/// `run` with a given client and every backend (tests).
pub async fn run_with(verify: &Verify, report: &Report, clients: &Clients) -> Vec<AssertionResult> {
    run_selected(verify, report, clients, &Selection::default()).await
}

/// `run` with a given client and selection.
pub async fn run_selected(
    verify: &Verify,
    report: &Report,
    clients: &Clients,
    selection: &Selection,
) -> Vec<AssertionResult> {
    let verify = &selection.apply(verify);
    let ctx = match RunContext::from_report(report) {
        Ok(c) => c,
        Err(e) => {
            return verify
                .assertions
                .iter()
                .map(|a| {
                    failed(
                        a,
                        String::new(),
                        0,
                        format!("cannot read the report's times: {e}"),
                    )
                })
                .collect();
        }
    };
    // The deadline counts from when verification starts (right after the load and linger in a
    // run; when `trafficgen verify` starts otherwise), so a re-check also waits for late data.
    let deadline = tokio::time::Instant::now() + verify.deadline;
    let mut results: Vec<Option<AssertionResult>> = vec![None; verify.assertions.len()];
    let mut done = vec![false; verify.assertions.len()];
    // Failed in a way asking again cannot change (reported at once, not after the deadline).
    let mut final_ = vec![false; verify.assertions.len()];
    for (i, a) in verify.assertions.iter().enumerate() {
        let b = backend_of(&a.kind);
        if !selection.selected(b) {
            done[i] = true;
            results[i] = Some(AssertionResult {
                skipped: true,
                ..failed(
                    a,
                    String::new(),
                    0,
                    format!("{} is not in {BACKENDS_VAR}", b.as_str()),
                )
            });
        }
    }
    loop {
        for (i, a) in verify.assertions.iter().enumerate() {
            if done[i] {
                continue;
            }
            let attempts = results[i].as_ref().map_or(0, |r| r.attempts) + 1;
            let outcome = attempt(a, verify, report, &ctx, clients).await;
            done[i] = outcome.passed || outcome.final_;
            final_[i] = !outcome.passed && outcome.final_;
            results[i] = Some(AssertionResult {
                name: a.name.clone(),
                passed: outcome.passed,
                query: outcome.query,
                observed: outcome.observed,
                expected: outcome.expected,
                attempts,
                message: outcome.message,
                skipped: false,
            });
        }
        let now = tokio::time::Instant::now();
        if done.iter().all(|d| *d) || now >= deadline {
            break;
        }
        tokio::time::sleep(
            verify
                .interval
                .min(deadline - now)
                .max(Duration::from_millis(1)),
        )
        .await;
    }
    let waited = verify.deadline;
    results
        .into_iter()
        .zip(final_)
        .map(|(r, final_)| {
            let mut r = r.expect("every assertion had at least one attempt");
            if r.skipped {
                return r;
            }
            let tries = if r.attempts == 1 {
                "1 attempt".to_string()
            } else {
                format!("{} attempts", r.attempts)
            };
            r.message = if r.passed {
                format!("{} ({tries})", r.message)
            } else if final_ {
                format!(
                    "{} (failed after {tries}: asking again cannot help)",
                    r.message
                )
            } else {
                format!(
                    "{} (failed after {tries}, deadline {}s)",
                    r.message,
                    waited.as_secs_f64()
                )
            };
            r
        })
        .collect()
}

fn failed(a: &Assertion, query: String, attempts: u32, message: String) -> AssertionResult {
    AssertionResult {
        name: a.name.clone(),
        passed: false,
        query,
        observed: None,
        expected: None,
        attempts,
        message,
        skipped: false,
    }
}

/// The generator's own count for `g`, from the report: of HTTP requests as the target saw
/// them (a flow's steps, not its flows).
pub fn ground_truth(report: &Report, g: &GroundRef) -> Result<f64, String> {
    let owned: Counts = match &g.op {
        None => report.sent_totals(),
        Some(op) => report
            .ops
            .iter()
            .find(|(n, _)| n == op)
            .ok_or_else(|| format!("the report has no operation {op:?}"))?
            .1
            .sent_counts(),
    };
    let counts = &owned;
    let n = match g.metric {
        GroundMetric::Requests => match g.status.as_deref() {
            None => counts.requests,
            Some(s) if s.len() == 3 && s.ends_with("xx") => {
                let class = s[..1]
                    .parse::<usize>()
                    .ok()
                    .filter(|c| (1..=5).contains(c))
                    .ok_or_else(|| format!("bad status class {s:?}"))?;
                counts.status_class[class - 1]
            }
            Some(s) => {
                let code: u16 = s.parse().map_err(|_| format!("bad status {s:?}"))?;
                counts
                    .status
                    .iter()
                    .find(|(c, _)| *c == code)
                    .map_or(0, |(_, n)| *n)
            }
        },
        GroundMetric::Errors => counts.errors.iter().sum(),
        GroundMetric::FaultsLatency => counts.faults_latency,
        GroundMetric::FaultsError => counts.faults_error,
    };
    Ok(n as f64)
}

/// `requests{op:create,status:5xx}`, as the scenario spells it.
pub fn ground_label(g: &GroundRef) -> String {
    let (name, mut parts) = match g.metric {
        GroundMetric::Requests => ("requests", vec![]),
        GroundMetric::Errors => ("errors", vec![]),
        GroundMetric::FaultsLatency => ("faults", vec!["kind:latency".to_string()]),
        GroundMetric::FaultsError => ("faults", vec!["kind:error".to_string()]),
    };
    if let Some(op) = &g.op {
        parts.push(format!("op:{op}"));
    }
    if let Some(s) = &g.status {
        parts.push(format!("status:{s}"));
    }
    if parts.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", parts.join(","))
    }
}

/// Short number text: integers without decimals, others with up to 4.
pub fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        let s = format!("{x:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn op_text(c: crate::plan::Comparison) -> &'static str {
    use crate::plan::Comparison::*;
    match c {
        Lt => "<",
        Le => "<=",
        Gt => ">",
        Ge => ">=",
        Eq => "==",
        Ne => "!=",
    }
}

/// The result of one attempt of one assertion.
#[derive(Debug, Clone)]
struct Attempt {
    passed: bool,
    /// Retrying cannot change it (configuration problem).
    final_: bool,
    query: String,
    observed: Option<f64>,
    expected: Option<String>,
    message: String,
}

impl Attempt {
    fn config(query: String, message: String) -> Attempt {
        Attempt {
            passed: false,
            final_: true,
            query,
            observed: None,
            expected: None,
            message,
        }
    }
}

/// Compares an answer with the expectation. Tolerance loosens the bound in the direction of
/// the comparison (`== x ± t` is `|observed − x| <= t`).
pub fn judge(
    expect: &Expect,
    answer: &Answer,
    report: &Report,
) -> Result<(bool, Option<String>, String), String> {
    let observed = answer.value;
    let shown = observed.map_or("no result".to_string(), num);
    Ok(match expect {
        Expect::NonEmpty => (
            answer.items > 0,
            Some("non-empty".into()),
            format!(
                "observed {shown} ({} items), expected a non-empty result",
                answer.items
            ),
        ),
        Expect::Empty => (
            answer.items == 0,
            Some("empty".into()),
            format!(
                "observed {shown} ({} items), expected no result",
                answer.items
            ),
        ),
        Expect::Compare {
            comparison,
            value,
            tolerance,
        } => {
            let (bound, what) = match value {
                Expected::Number(n) => (*n, num(*n)),
                Expected::Ground(g) => {
                    let n = ground_truth(report, g)?;
                    (n, format!("{} ({})", num(n), ground_label(g)))
                }
            };
            let tol = match tolerance {
                Tolerance::Absolute(a) => *a,
                Tolerance::Relative(r) => r * bound.abs(),
            };
            let tol_text = match tolerance {
                Tolerance::Absolute(a) if *a == 0.0 => String::new(),
                Tolerance::Absolute(a) => format!(" ± {}", num(*a)),
                Tolerance::Relative(r) => format!(" ± {}% = {}", num(r * 100.0), num(tol)),
            };
            let expected = format!("{} {what}{tol_text}", op_text(*comparison));
            use crate::plan::Comparison::*;
            // An empty result (e.g. `sum(…)` over no 5xx series) counts as 0 only against an
            // upper bound or an equality with 0: a misspelled query must not pass `> 0`.
            let (value, note) = match observed {
                Some(v) => (Some(v), ""),
                None if matches!(comparison, Lt | Le | Eq) && bound - tol <= 0.0 => {
                    (Some(0.0), " (no result, counted as 0)")
                }
                None => (None, ""),
            };
            let passed = value.is_some_and(|v| match comparison {
                Eq => (v - bound).abs() <= tol,
                Ne => (v - bound).abs() > tol,
                Lt => v < bound + tol,
                Le => v <= bound + tol,
                Gt => v > bound - tol,
                Ge => v >= bound - tol,
            });
            (
                passed,
                Some(expected.clone()),
                format!("observed {shown}{note}, expected {expected}"),
            )
        }
    })
}

async fn attempt(
    a: &Assertion,
    verify: &Verify,
    report: &Report,
    ctx: &RunContext,
    clients: &Clients,
) -> Attempt {
    let eval = ctx.eval_time();
    let (query, url, kind) = match &a.kind {
        AssertionKind::Promql { query, .. } | AssertionKind::PromqlDelta { query, .. } => (
            ctx.substitute(query),
            &verify.prometheus_url,
            "prometheus_url",
        ),
        AssertionKind::Logql { query, .. } => (ctx.substitute(query), &verify.loki_url, "loki_url"),
        AssertionKind::Traceql { query, .. } => {
            (ctx.substitute(query), &verify.tempo_url, "tempo_url")
        }
        AssertionKind::Traces {
            which,
            limit,
            slowest_span,
        } => {
            let q = format!(
                "{} traces (up to {limit}) exist in Tempo{}",
                set_name(*which),
                slowest_span
                    .as_ref()
                    .map_or(String::new(), |s| format!(", slowest span {s}"))
            );
            return match &verify.tempo_url {
                None => Attempt::config(q, "verify.tempo_url is not set".into()),
                Some(url) => {
                    traces(
                        url,
                        q,
                        *which,
                        *limit,
                        slowest_span.as_deref(),
                        report,
                        clients,
                    )
                    .await
                }
            };
        }
    };
    let Some(url) = url else {
        return Attempt::config(query, format!("verify.{kind} is not set"));
    };
    let answer = match &a.kind {
        AssertionKind::Promql { .. } => {
            clients
                .promql(url, &query, eval.unix_timestamp_nanos() as f64 / 1e9)
                .await
        }
        AssertionKind::PromqlDelta { .. } => {
            let before = (ctx.started - BEFORE_START).unix_timestamp_nanos() as f64 / 1e9;
            let after = eval.unix_timestamp_nanos() as f64 / 1e9;
            match clients.promql(url, &query, before).await {
                Err(e) => Err(e),
                Ok(b) => clients.promql(url, &query, after).await.map(|a| {
                    // Absent = 0 on both sides: a counter born during the run started at 0.
                    clients::Answer {
                        value: Some(a.value.unwrap_or(0.0) - b.value.unwrap_or(0.0)),
                        items: a.items,
                    }
                }),
            }
        }
        AssertionKind::Logql { .. } => {
            clients
                .logql(
                    url,
                    &query,
                    ctx.started.unix_timestamp_nanos(),
                    eval.unix_timestamp_nanos(),
                )
                .await
        }
        AssertionKind::Traceql { .. } => {
            clients
                .traceql(
                    url,
                    &query,
                    ctx.started.unix_timestamp(),
                    eval.unix_timestamp() + 1,
                )
                .await
        }
        AssertionKind::Traces { .. } => unreachable!("handled above"),
    };
    let (AssertionKind::Promql { expect, .. }
    | AssertionKind::PromqlDelta { expect, .. }
    | AssertionKind::Logql { expect, .. }
    | AssertionKind::Traceql { expect, .. }) = &a.kind
    else {
        unreachable!("handled above")
    };
    match answer {
        Err(e) => {
            // A rejected query (400) or a backend nobody answers for: asking again cannot help.
            let final_ = e.is_final();
            Attempt {
                passed: false,
                final_,
                query,
                observed: None,
                expected: None,
                message: e.to_string(),
            }
        }
        Ok(answer) => match judge(expect, &answer, report) {
            Ok((passed, expected, message)) => Attempt {
                passed,
                final_: false,
                query,
                observed: answer.value,
                expected,
                message,
            },
            Err(e) => Attempt::config(query, e),
        },
    }
}

fn set_name(which: TraceSet) -> &'static str {
    match which {
        TraceSet::Slowest => "slowest",
        TraceSet::Failed => "failed",
        TraceSet::Faulted => "faulted",
    }
}

/// The report's kept traces of one set exist in Tempo (and, optionally, `want` is the span
/// with the largest self time in each).
async fn traces(
    url: &str,
    query: String,
    which: TraceSet,
    limit: usize,
    want: Option<&str>,
    report: &Report,
    clients: &Clients,
) -> Attempt {
    let refs = match which {
        TraceSet::Slowest => &report.slowest,
        TraceSet::Failed => &report.failed,
        TraceSet::Faulted => &report.faulted,
    };
    let refs: Vec<_> = refs.iter().take(limit.max(1)).collect();
    if refs.is_empty() {
        return Attempt::config(
            query,
            format!(
                "the report lists no {} traces (ids are only kept for exported client spans: \
                 is OTLP configured?)",
                set_name(which)
            ),
        );
    }
    let mut good = 0usize;
    let mut problems = Vec::new();
    let mut final_ = false;
    for r in &refs {
        match clients.trace(url, &r.trace_id).await {
            Err(e) if e.is_final() => {
                // Nobody answers: the other ids would fail the same way.
                problems.push(e.to_string());
                final_ = true;
                break;
            }
            Err(e) => problems.push(format!("{}: {e}", r.trace_id)),
            Ok(spans) => match (want, clients::slowest_span(&spans)) {
                (None, _) => good += 1,
                (Some(w), Some((name, _))) if name == w => good += 1,
                (Some(w), Some((name, self_ns))) => problems.push(format!(
                    "{}: slowest span is {name} ({} ms self time), not {w}",
                    r.trace_id,
                    num(self_ns as f64 / 1e6)
                )),
                (Some(w), None) => problems.push(format!("{}: no spans, expected {w}", r.trace_id)),
            },
        }
    }
    let expected = format!(
        "{} traces found{}",
        refs.len(),
        want.map_or(String::new(), |w| format!(" with slowest span {w}"))
    );
    let message = if problems.is_empty() {
        format!(
            "observed {good} of {}: all found{}",
            refs.len(),
            want.map_or(String::new(), |w| format!(", {w} slowest in each"))
        )
    } else {
        format!("observed {good} of {}: {}", refs.len(), problems.join("; "))
    };
    Attempt {
        passed: problems.is_empty(),
        final_,
        query,
        observed: Some(good as f64),
        expected: Some(expected),
        message,
    }
}

#[cfg(test)]
mod tests;
