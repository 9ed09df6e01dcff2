//! The `thresholds:`, `faults:` and `verify:` sections → `Threshold`s, `FaultWindow`s and
//! `Verify` (the `expect:` grammar of assertions is in `expect.rs`).

use std::time::Duration;

use super::expect::parse_expect;
use super::{Errors, defaults};
use crate::plan::placeholders::{PLACEHOLDERS, is_placeholder};
use crate::plan::threshold::{self, Threshold};
use crate::plan::{
    Assertion, AssertionKind, Expect, FaultKind, FaultVia, FaultWindow, Tolerance, Verify,
};
use crate::scenario::Sp;
use crate::scenario::model::{self, Entries, FaultKindName, ToleranceSpec};
use crate::scenario::suggest::suggest;

/// Where entry `i` of a threshold-style list is, and its field path: a lone string has no
/// position of its own (the list's is used) and is named by the key alone.
pub(super) fn entry_place(
    list: &Sp<model::ThresholdList>,
    entry: &Sp<model::ThresholdEntry>,
    i: usize,
    field: &str,
) -> ((u32, u32), String) {
    let at = if entry.line == 0 {
        (list.line, list.column)
    } else {
        (entry.line, entry.column)
    };
    let f = if list.0.len() == 1 && entry.line == 0 {
        field.to_string()
    } else {
        format!("{field}[{i}]")
    };
    (at, f)
}

pub(super) fn unknown_op(name: &str, ops: &[String]) -> String {
    let names: Vec<&str> = ops.iter().map(String::as_str).collect();
    match suggest(name, &names) {
        Some(s) => format!("unknown operation `{name}`, did you mean `{s}`?"),
        None if names.is_empty() => format!("unknown operation `{name}` (no operation is named)"),
        None => format!(
            "unknown operation `{name}` (operations: {})",
            names.join(", ")
        ),
    }
}

/// What threshold references are checked against: the operation names and which of them have
/// checks (`None` when the mix could not be read whole), and the run's length.
pub(super) struct Refs<'a> {
    pub ops: Option<&'a [String]>,
    pub with_checks: Option<&'a [String]>,
    pub run: Duration,
}

pub(super) fn thresholds(
    t: Option<&Entries<Sp<model::ThresholdList>>>,
    refs: &Refs,
    errs: &mut Errors,
) -> Vec<Threshold> {
    let ops = refs.ops;
    let mut out = Vec::new();
    for (key, list) in t.map_or(&[][..], |t| &t.0) {
        let field = format!("thresholds.{}", key.value);
        let op = match threshold::parse_key(key) {
            Ok((_, op)) => op,
            Err(e) => {
                errs.at(key, &field, e.message);
                continue;
            }
        };
        if let (Some(op), Some(ops)) = (&op, ops)
            && !ops.contains(op)
        {
            errs.at(key, &field, unknown_op(op, ops));
        }
        if list.0.is_empty() {
            errs.at(list, &field, "list at least one expression");
        }
        for (i, entry) in list.0.iter().enumerate() {
            let (at, f) = entry_place(list, entry, i, &field);
            match threshold::parse(key, &entry.threshold) {
                Ok(mut th) => {
                    reference_problems(&th, refs, &entry.threshold, at, &f, errs);
                    th.abort_on_fail = entry.abort_on_fail;
                    th.delay_abort_eval = entry.delay_abort_eval.map_or(Duration::ZERO, |d| d.0);
                    out.push(th);
                }
                Err(e) => errs.at_pos(
                    at.0,
                    at.1,
                    f,
                    format!("`{}`: {}", entry.threshold.trim(), e.message),
                ),
            }
        }
    }
    out
}

/// Problems a threshold has only in the context of this scenario: a window longer than the
/// run (it would never be evaluated), `checks` on an operation (or a mix) without checks.
fn reference_problems(
    th: &Threshold,
    refs: &Refs,
    text: &str,
    at: (u32, u32),
    field: &str,
    errs: &mut Errors,
) {
    let text = text.trim();
    if let Some(w) = th.window.filter(|w| !refs.run.is_zero() && *w > refs.run) {
        errs.at_pos(
            at.0,
            at.1,
            field,
            format!(
                "`{text}`: the window ({}) is longer than the run ({}), so it would never be \
                 evaluated",
                crate::scenario::units::Duration(w),
                crate::scenario::units::Duration(refs.run)
            ),
        );
    }
    if th.metric != threshold::ThresholdMetric::Checks {
        return;
    }
    let (Some(ops), Some(with)) = (refs.ops, refs.with_checks) else {
        return;
    };
    match &th.op {
        Some(op) if ops.contains(op) && !with.contains(op) => errs.at_pos(
            at.0,
            at.1,
            field,
            format!(
                "`{text}`: operation `{op}` has no checks, so this threshold has nothing to read"
            ),
        ),
        None if with.is_empty() => errs.at_pos(
            at.0,
            at.1,
            field,
            format!("`{text}`: no operation has checks, so this threshold has nothing to read"),
        ),
        _ => {}
    }
}

pub(super) fn faults(
    f: Option<&[Sp<model::FaultSpec>]>,
    ops: Option<&[String]>,
    load: Duration,
    factor: f64,
    errs: &mut Errors,
) -> Vec<FaultWindow> {
    let mut out = Vec::new();
    for (i, w) in f.unwrap_or(&[]).iter().enumerate() {
        let field = format!("faults[{i}]");
        if w.duration.value.0.is_zero() {
            errs.at(
                &w.duration,
                format!("{field}.duration"),
                "a fault window must last longer than 0",
            );
        }
        // Checked: `--duration` over a very short scenario makes `factor` huge.
        let scaled = |d: Duration| {
            Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(Duration::MAX)
        };
        let (start, length) = (scaled(w.start.value.0), scaled(w.duration.value.0));
        if !load.is_zero() && start >= load {
            errs.at(
                &w.start,
                format!("{field}.start"),
                format!(
                    "the window starts after the load ends (at {})",
                    crate::scenario::units::Duration(load)
                ),
            );
        }
        let via = w.via.as_ref().map_or(FaultVia::Header, |v| v.value);
        let kind = match w.kind.value {
            FaultKindName::Latency => {
                if let Some(s) = &w.status {
                    errs.at(
                        s,
                        format!("{field}.status"),
                        "`status` belongs to `kind: error` faults",
                    );
                }
                match &w.delay {
                    None => errs.at(w, format!("{field}.delay"), "`kind: latency` needs `delay`"),
                    Some(d) if d.value.0.is_zero() => {
                        errs.at(d, format!("{field}.delay"), "must be longer than 0")
                    }
                    _ => {}
                }
                if let Some(sp) = &w.span
                    && !crate::plan::TODO_SPANS.contains(&sp.value.as_str())
                {
                    errs.at(
                        sp,
                        format!("{field}.span"),
                        crate::scenario::suggest::unknown_message(
                            "span",
                            &sp.value,
                            &crate::plan::TODO_SPANS,
                        ),
                    );
                }
                FaultKind::Latency {
                    delay: w.delay.as_ref().map_or(Duration::ZERO, |d| d.value.0),
                    jitter: w.jitter.as_ref().map_or(Duration::ZERO, |d| d.value.0),
                    span: w.span.as_ref().map(|s| s.value.clone()),
                }
            }
            FaultKindName::Error => {
                for (name, present) in [("delay", w.delay.as_ref()), ("jitter", w.jitter.as_ref())]
                {
                    if let Some(p) = present {
                        errs.at(
                            p,
                            format!("{field}.{name}"),
                            format!("`{name}` belongs to `kind: latency` faults"),
                        );
                    }
                }
                if let Some(s) = &w.span {
                    errs.at(
                        s,
                        format!("{field}.span"),
                        "`span` belongs to `kind: latency` faults",
                    );
                }
                let status = w.status.as_ref().map_or(0, |s| s.value);
                match &w.status {
                    None => errs.at(
                        w,
                        format!("{field}.status"),
                        "`kind: error` needs `status` (400..=599)",
                    ),
                    Some(s) if !(400..=599).contains(&s.value) => {
                        errs.at(s, format!("{field}.status"), "must be in 400..=599")
                    }
                    _ => {}
                }
                FaultKind::Error { status }
            }
        };
        let mut names = Vec::new();
        for op in w.ops.as_deref().unwrap_or(&[]) {
            if let Some(ops) = ops.filter(|ops| !ops.contains(&op.value)) {
                errs.at(op, format!("{field}.ops"), unknown_op(op, ops));
            }
            names.push(op.value.clone());
        }
        match via {
            FaultVia::Header => {
                for (name, present) in [("route", w.route.as_ref()), ("method", w.method.as_ref())]
                {
                    if let Some(p) = present {
                        errs.at(
                            p,
                            format!("{field}.{name}"),
                            format!(
                                "`{name}` filters `via: server` faults; header faults use `ops`"
                            ),
                        );
                    }
                }
            }
            FaultVia::Server => {
                if let Some(o) = w.ops.as_ref().and_then(|o| o.first()) {
                    errs.at(
                        o,
                        format!("{field}.ops"),
                        "server faults filter by `route` and `method`, not `ops`",
                    );
                }
                if let Some(r) = w.route.as_ref().filter(|r| !r.starts_with('/')) {
                    errs.at(
                        r,
                        format!("{field}.route"),
                        "a route starts with `/` (e.g. /api/todos)",
                    );
                }
            }
        }
        let share = w.share.as_ref().map_or(1.0, |s| s.value.0);
        if let Some(s) = w.share.as_ref().filter(|s| s.value.0 == 0.0) {
            errs.at(s, format!("{field}.share"), "a share of 0 affects nothing");
        }
        out.push(FaultWindow {
            start,
            duration: length,
            ops: names,
            route: w.route.as_ref().map(|r| r.value.clone()),
            method: w.method.as_ref().map(|m| m.value.to_ascii_uppercase()),
            share,
            kind,
            via,
        });
    }
    out.sort_by_key(|w| w.start);
    out
}

/// An http(s) URL with a host (for telemetry and observability endpoints).
pub(crate) fn check_url(url: &str, allow_https: bool) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://").filter(|_| allow_https))
        .ok_or_else(|| format!("`{url}` is not an http(s) URL"))?;
    if rest.is_empty() || rest.starts_with(['/', ':']) {
        return Err(format!("`{url}`: missing host"));
    }
    Ok(())
}

// The list lives with the substitution (verify owns it); `fault_N_start`/`fault_N_end` too.

fn check_placeholders(q: &Sp<String>, field: &str, errs: &mut Errors) {
    let mut rest = q.as_str();
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            errs.at(q, field, "`${` is never closed with `}`");
            return;
        };
        let name = &after[..end];
        if !is_placeholder(name) {
            let hint = suggest(name, PLACEHOLDERS)
                .map_or(String::new(), |s| format!(", did you mean `${{{s}}}`?"));
            let known = PLACEHOLDERS.join(", ");
            errs.at(
                q,
                field,
                format!("unknown placeholder `${{{name}}}`{hint} (known: {known}, fault_N_start, fault_N_end)"),
            );
        }
        rest = &after[end + 1..];
    }
}

pub(super) fn verify(
    v: &Sp<model::VerifySpec>,
    ops: Option<&[String]>,
    errs: &mut Errors,
) -> Verify {
    let mut url = |sp: &Option<Sp<String>>, name: &str| {
        sp.as_ref().and_then(|u| match check_url(u, true) {
            Ok(()) => Some(u.value.trim_end_matches('/').to_string()),
            Err(m) => {
                errs.at(u, format!("verify.{name}"), m);
                None
            }
        })
    };
    let out_urls = (
        url(&v.prometheus_url, "prometheus_url"),
        url(&v.loki_url, "loki_url"),
        url(&v.tempo_url, "tempo_url"),
        url(&v.grafana_url, "grafana_url"),
    );
    for (name, d) in [
        ("deadline", v.deadline.as_ref()),
        ("interval", v.interval.as_ref()),
    ] {
        if let Some(d) = d.filter(|d| d.value.0.is_zero()) {
            errs.at(d, format!("verify.{name}"), "must be longer than 0");
        }
    }
    if v.assertions.is_empty() && !errs.damaged("verify.assertions") {
        errs.at(
            &v.assertions,
            "verify.assertions",
            "list at least one assertion",
        );
    }
    let mut assertions: Vec<Assertion> = Vec::new();
    for (i, a) in v.assertions.iter().enumerate() {
        let field = format!("verify.assertions[{i}]");
        let Some(assertion) = assertion(a, &field, &v.value, ops, errs) else {
            continue;
        };
        if assertions.iter().any(|x| x.name == assertion.name) {
            errs.at(
                a,
                format!("{field}.name"),
                format!("duplicate assertion name `{}`", assertion.name),
            );
        }
        assertions.push(assertion);
    }
    Verify {
        prometheus_url: out_urls.0,
        loki_url: out_urls.1,
        tempo_url: out_urls.2,
        grafana_url: out_urls.3,
        deadline: v
            .deadline
            .as_ref()
            .map_or(defaults::VERIFY_DEADLINE, |d| d.value.0),
        interval: v
            .interval
            .as_ref()
            .map_or(defaults::VERIFY_INTERVAL, |d| d.value.0),
        assertions,
    }
}

fn assertion(
    a: &Sp<model::AssertionSpec>,
    field: &str,
    v: &model::VerifySpec,
    ops: Option<&[String]>,
    errs: &mut Errors,
) -> Option<Assertion> {
    let queries = [
        ("promql", &a.promql, &v.prometheus_url, "prometheus_url"),
        (
            "promql_delta",
            &a.promql_delta,
            &v.prometheus_url,
            "prometheus_url",
        ),
        ("logql", &a.logql, &v.loki_url, "loki_url"),
        ("traceql", &a.traceql, &v.tempo_url, "tempo_url"),
    ];
    let given = queries.iter().filter(|q| q.1.is_some()).count() + usize::from(a.traces.is_some());
    if given != 1 {
        errs.at(
            a,
            field,
            "give exactly one of `promql`, `promql_delta`, `logql`, `traceql` or `traces`",
        );
        return None;
    }
    for (lang, q, endpoint, endpoint_name) in &queries {
        if let Some(q) = q {
            if endpoint.is_none() {
                errs.at(
                    q,
                    format!("{field}.{lang}"),
                    format!("needs `verify.{endpoint_name}`"),
                );
            }
            if q.trim().is_empty() {
                errs.at(q, format!("{field}.{lang}"), "the query is empty");
            }
            check_placeholders(q, &format!("{field}.{lang}"), errs);
        }
    }
    let trace_only = [
        ("limit", a.limit.as_ref().map(|s| (s.line, s.column))),
        (
            "slowest_span",
            a.slowest_span.as_ref().map(|s| (s.line, s.column)),
        ),
    ];
    let name = a.name.as_ref().map(|n| n.value.clone());
    if let Some(which) = &a.traces {
        if v.tempo_url.is_none() {
            errs.at(which, format!("{field}.traces"), "needs `verify.tempo_url`");
        }
        for (n, p) in [
            ("expect", a.expect.as_ref().map(|s| (s.line, s.column))),
            (
                "tolerance",
                a.tolerance.as_ref().map(|s| (s.line, s.column)),
            ),
        ] {
            if let Some((line, col)) = p {
                errs.at_pos(
                    line,
                    col,
                    format!("{field}.{n}"),
                    format!("`{n}` does not apply to `traces` assertions"),
                );
            }
        }
        let limit = a.limit.as_ref().map_or(defaults::TRACES_LIMIT, |l| {
            if l.value == 0 {
                errs.at(l, format!("{field}.limit"), "must be at least 1");
            }
            l.value as usize
        });
        let which = which.value;
        let label = format!(
            "traces {}",
            ["slowest", "failed", "faulted"][which as usize]
        );
        return Some(Assertion {
            name: name.unwrap_or(label),
            kind: AssertionKind::Traces {
                which,
                limit,
                slowest_span: a.slowest_span.as_ref().map(|s| s.value.clone()),
            },
        });
    }
    for (n, p) in trace_only {
        if let Some((line, col)) = p {
            errs.at_pos(
                line,
                col,
                format!("{field}.{n}"),
                format!("`{n}` applies to `traces` assertions only"),
            );
        }
    }
    let expect = match &a.expect {
        None => Expect::NonEmpty,
        Some(e) => parse_expect(e, ops).unwrap_or_else(|m| {
            errs.at(e, format!("{field}.expect"), m);
            Expect::NonEmpty
        }),
    };
    match (&expect, &a.tolerance) {
        (Expect::Compare { .. }, _) | (_, None) => {}
        (_, Some(t)) => errs.at(
            t,
            format!("{field}.tolerance"),
            "`tolerance` needs a comparison in `expect`",
        ),
    }
    let expect = match expect {
        Expect::Compare {
            comparison, value, ..
        } => Expect::Compare {
            comparison,
            value,
            tolerance: match a.tolerance.as_ref().map(|t| t.value) {
                Some(ToleranceSpec::Relative(r)) => Tolerance::Relative(r),
                Some(ToleranceSpec::Absolute(x)) => Tolerance::Absolute(x),
                None => Tolerance::Absolute(0.0),
            },
        },
        other => other,
    };
    let (query, kind): (String, fn(String, Expect) -> AssertionKind) = if let Some(q) = &a.promql {
        (q.value.clone(), |query, expect| AssertionKind::Promql {
            query,
            expect,
        })
    } else if let Some(q) = &a.promql_delta {
        (q.value.clone(), |query, expect| {
            AssertionKind::PromqlDelta { query, expect }
        })
    } else if let Some(q) = &a.logql {
        (q.value.clone(), |query, expect| AssertionKind::Logql {
            query,
            expect,
        })
    } else {
        let q = a.traceql.as_ref().expect("one query is set");
        (q.value.clone(), |query, expect| AssertionKind::Traceql {
            query,
            expect,
        })
    };
    Some(Assertion {
        name: name.unwrap_or_else(|| query.trim().to_string()),
        kind: kind(query, expect),
    })
}
