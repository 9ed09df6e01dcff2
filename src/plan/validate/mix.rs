//! The `mix:` section → `Mix`: operations, their requests (templates compiled here), flows
//! with captures, and checks.

use super::{Errors, defaults, is_token};
use crate::plan::template::{Scope, Template};
use crate::plan::{
    Capture, CaptureSource, Check, FlowStep, Mix, OpKind, Operation, RequestTemplate,
};
use crate::scenario::Sp;
use crate::scenario::model::{self, Entries};

pub(super) fn mix(
    m: &Sp<model::MixSpec>,
    constants: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Mix {
    let ops = &m.operations.value;
    if ops.is_empty() && !errs.damaged("mix.operations") {
        errs.at(&m.operations, "mix.operations", "the mix has no operations");
    }
    let mut operations: Vec<Operation> = Vec::new();
    let mut first_seen: Vec<(String, u32)> = Vec::new();
    for (i, spec) in ops.iter().enumerate() {
        let field = format!("mix.operations[{i}]");
        let Some(op) = operation(spec, &field, constants, env, errs) else {
            continue;
        };
        match first_seen.iter().find(|(n, _)| *n == op.name) {
            Some((_, line)) => {
                let at = spec
                    .name
                    .as_ref()
                    .map_or((spec.line, spec.column), |n| (n.line, n.column));
                errs.at_pos(
                    at.0,
                    at.1,
                    format!("{field}.name"),
                    format!(
                        "duplicate operation name `{}` (first at line {line})",
                        op.name
                    ),
                );
            }
            None => first_seen.push((op.name.clone(), spec.line)),
        }
        operations.push(op);
    }
    let pool_capacity = m
        .pool_capacity
        .as_ref()
        .map_or(defaults::POOL_CAPACITY, |p| {
            if p.value == 0 {
                errs.at(p, "mix.pool_capacity", "must be at least 1");
            }
            p.value as usize
        });
    let steady_state = m.steady_state.as_ref().is_some_and(|b| b.value);
    if steady_state {
        for (i, clash) in ops.iter().enumerate().filter_map(|(i, o)| {
            o.name
                .as_ref()
                .filter(|n| n.value == crate::plan::EVICT_OP)
                .map(|n| (i, n))
        }) {
            errs.at(
                clash,
                format!("mix.operations[{i}].name"),
                format!(
                    "`{}` is the name of the operation `mix.steady_state` adds; choose another",
                    crate::plan::EVICT_OP
                ),
            );
        }
        // Never drawn (weight 0): sent by a create whose new id evicted the pool's oldest one.
        operations.push(Operation {
            name: crate::plan::EVICT_OP.to_string(),
            weight: 0,
            kind: OpKind::Todo(crate::plan::TodoOp::Delete),
            checks: Vec::new(),
            follow_redirects: None,
            expect_status: Vec::new(),
        });
    }
    let cleanup = m.cleanup.as_ref().is_some_and(|b| b.value).then(|| {
        m.cleanup_timeout
            .as_ref()
            .map_or(defaults::CLEANUP_TIMEOUT, |d| {
                if d.value.0.is_zero() {
                    errs.at(d, "mix.cleanup_timeout", "must be more than 0s");
                }
                d.value.0
            })
    });
    if m.cleanup.is_none()
        && let Some(d) = &m.cleanup_timeout
    {
        errs.at(
            d,
            "mix.cleanup_timeout",
            "has no effect without `mix.cleanup: true`",
        );
    }
    Mix {
        operations,
        pool_capacity,
        steady_state,
        cleanup,
    }
}

/// Scenario `vars:` resolved to text; values may use `{{env.NAME}}` and earlier vars.
pub(super) fn constants(
    vars: Option<&Entries<Sp<String>>>,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in vars.map_or(&[][..], |v| &v.0) {
        let field = format!("vars.{}", name.value);
        if !name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || matches!(name.as_str(), "seq" | "uuid" | "env")
        {
            errs.at(
                name,
                &field,
                format!(
                    "`{}` cannot be a variable name (letters, digits, `_`; not seq, uuid, env)",
                    name.value
                ),
            );
            continue;
        }
        let scope = Scope {
            constants: &out,
            captures: &[],
            env,
        };
        match Template::compile(value, &scope) {
            Ok(t) if t.is_static() => {
                let mut buf = Vec::new();
                t.render(&Default::default(), &mut rand::rng(), &mut buf);
                out.push((
                    name.value.clone(),
                    String::from_utf8_lossy(&buf).into_owned(),
                ));
            }
            Ok(_) => errs.at(
                value,
                &field,
                "vars are constants: use generators (uuid, seq, random_*) in the requests",
            ),
            Err(e) => errs.at(value, &field, e.to_string()),
        }
    }
    out
}

fn operation(
    spec: &Sp<model::OperationSpec>,
    field: &str,
    constants: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<Operation> {
    let kinds = [
        spec.todo.is_some(),
        spec.request.is_some(),
        spec.flow.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        errs.at(
            spec,
            field,
            "give exactly one of `todo`, `request` or `flow`",
        );
        return None;
    }
    let name = match (&spec.name, &spec.todo) {
        (Some(n), _) => {
            if n.trim().is_empty() || n.contains(['"', '\\', '\n', '{', '}', ',']) {
                errs.at(
                    n,
                    format!("{field}.name"),
                    "a name must be non-empty text without quotes, braces, commas or backslashes",
                );
            }
            n.value.clone()
        }
        (None, Some(t)) => t.value.as_str().to_string(),
        (None, None) => {
            errs.at(
                spec,
                format!("{field}.name"),
                "`request` and `flow` operations need a `name`",
            );
            return None;
        }
    };
    let weight = spec.weight.as_ref().map_or(1, |w| {
        if w.value == 0 {
            errs.at(
                w,
                format!("{field}.weight"),
                "must be at least 1 (remove the operation to leave it out)",
            );
        }
        w.value
    });
    let kind = if let Some(t) = &spec.todo {
        OpKind::Todo(t.value)
    } else if let Some(r) = &spec.request {
        let scope = Scope {
            constants,
            captures: &[],
            env,
        };
        OpKind::Request(request(r, &format!("{field}.request"), &scope, errs))
    } else {
        let steps = spec.flow.as_ref().expect("one kind is set");
        OpKind::Flow(flow(steps, &format!("{field}.flow"), constants, env, errs))
    };
    let checks = checks(spec.checks.as_ref(), &format!("{field}.checks"), errs);
    // Explicit, else the status check's statuses: what a check expects is not an error.
    let expect_status = match &spec.expect_status {
        Some(e) => {
            if e.0.is_empty() {
                errs.at(
                    e,
                    format!("{field}.expect_status"),
                    "list at least one status",
                );
            }
            e.0.clone()
        }
        None => checks
            .iter()
            .find_map(|c| match c {
                Check::Status(r) => Some(r.clone()),
                _ => None,
            })
            .unwrap_or_default(),
    };
    Some(Operation {
        name,
        weight,
        kind,
        checks,
        follow_redirects: spec.follow_redirects.as_ref().map(|f| f.value),
        expect_status,
    })
}

/// A user header's name and (compiled) value: a token, not one the generator computes, no
/// CR, LF or NUL in the literal text (captured values are checked when sent).
pub(super) fn check_header(name: &Sp<String>, value: &Template, field: &str, errs: &mut Errors) {
    if !is_token(name) {
        errs.at(name, field, "not a valid header name");
    } else if name.eq_ignore_ascii_case("content-length")
        || name.eq_ignore_ascii_case("transfer-encoding")
    {
        errs.at(
            name,
            field,
            format!(
                "`{}` is computed by the generator from the body and cannot be set",
                name.value
            ),
        );
    } else if name.eq_ignore_ascii_case("traceparent") {
        // A second `traceparent` next to the generated one makes a receiver ignore both (W3C
        // Trace Context) and its spans would not be the ones the report links to.
        errs.at(
            name,
            field,
            "`traceparent` is set by the generator on every request (the report's trace links \
             are its ids) and cannot be set",
        );
    }
    if value.literal_has(|b| matches!(b, b'\r' | b'\n' | 0)) {
        errs.at(name, field, "the value contains CR, LF or NUL");
    }
}

pub(super) fn template(s: &Sp<String>, field: &str, scope: &Scope, errs: &mut Errors) -> Template {
    Template::compile(s, scope).unwrap_or_else(|e| {
        errs.inside(s, e.offset, field, format!("template: {}", e.message));
        Template::literal(s.value.clone())
    })
}

fn request(
    r: &Sp<model::RequestSpec>,
    field: &str,
    scope: &Scope,
    errs: &mut Errors,
) -> RequestTemplate {
    let method = r.method.as_ref().map_or("GET".to_string(), |m| {
        if !is_token(m) || m.value != m.to_ascii_uppercase() {
            errs.at(
                m,
                format!("{field}.method"),
                format!("`{}` is not an HTTP method (e.g. GET, POST)", m.value),
            );
        }
        m.value.clone()
    });
    // `{{var}}` first, `var` a capture: a `Location` or URL the target gave, resolved when sent.
    let from_capture = r
        .path
        .strip_prefix("{{")
        .and_then(|rest| rest.split_once("}}"))
        .is_some_and(|(name, _)| scope.captures.iter().any(|c| c == name.trim()));
    if !r.path.starts_with('/') && !from_capture {
        let message = if scope.captures.is_empty() {
            "the path must start with `/`"
        } else {
            "the path must start with `/` or with a captured URL (`{{var}}`, e.g. a `Location`)"
        };
        errs.at(&r.path, format!("{field}.path"), message);
    }
    let path = template(&r.path, &format!("{field}.path"), scope, errs);
    if path.literal_has(|b| b.is_ascii_control() || b == b' ') {
        errs.at(
            &r.path,
            format!("{field}.path"),
            "the path contains a space or a control character (CR, LF, NUL, ...): percent-encode it",
        );
    }
    let mut headers = Vec::new();
    for (name, value) in r.headers.as_ref().map_or(&[][..], |h| &h.0) {
        let f = format!("{field}.headers.{}", name.value);
        let t = template(value, &f, scope, errs);
        check_header(name, &t, &f, errs);
        headers.push((name.value.clone(), t));
    }
    let body = r
        .body
        .as_ref()
        .map(|b| template(b, &format!("{field}.body"), scope, errs));
    RequestTemplate {
        method,
        path,
        headers,
        body,
        from_capture,
    }
}

fn flow(
    steps: &Sp<Vec<Sp<model::FlowStepSpec>>>,
    field: &str,
    constants: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Vec<FlowStep> {
    if steps.is_empty() && !errs.damaged(field) {
        errs.at(steps, field, "a flow needs at least one step");
    }
    let mut captured: Vec<String> = Vec::new();
    let mut out: Vec<FlowStep> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let f = format!("{field}[{i}]");
        if out.iter().any(|s| s.name == step.name.value) {
            errs.at(
                &step.name,
                format!("{f}.name"),
                format!("duplicate step name `{}`", step.name.value),
            );
        }
        // Steps see only what earlier steps captured.
        let scope = Scope {
            constants,
            captures: &captured,
            env,
        };
        let request = request(&step.request, &format!("{f}.request"), &scope, errs);
        let mut captures = Vec::new();
        for (var, source) in step.capture.as_ref().map_or(&[][..], |c| &c.0) {
            let cf = format!("{f}.capture.{}", var.value);
            if !var
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                errs.at(var, &cf, "a variable name is letters, digits and `_`");
            }
            let from = if let Some(h) = source.strip_prefix("header:") {
                if !is_token(h.trim()) {
                    errs.at(source, &cf, format!("`{}` is not a header name", h.trim()));
                }
                CaptureSource::Header(h.trim().to_string())
            } else if source.starts_with('/') {
                CaptureSource::JsonPointer(source.value.clone())
            } else {
                errs.at(
                    source,
                    &cf,
                    "capture from a JSON pointer (`/id`) or a header (`header:Location`)",
                );
                continue;
            };
            captures.push(Capture {
                var: var.value.clone(),
                from,
            });
            if !captured.contains(&var.value) {
                captured.push(var.value.clone());
            }
        }
        let checks = checks(step.checks.as_ref(), &format!("{f}.checks"), errs);
        out.push(FlowStep {
            name: step.name.value.clone(),
            request,
            captures,
            checks,
        });
    }
    out
}

fn checks(c: Option<&model::ChecksSpec>, field: &str, errs: &mut Errors) -> Vec<Check> {
    let Some(c) = c else { return Vec::new() };
    let mut out = Vec::new();
    if let Some(s) = &c.status {
        if s.0.is_empty() {
            errs.at(s, format!("{field}.status"), "list at least one status");
        }
        out.push(Check::Status(s.0.clone()));
    }
    if let Some(b) = &c.body_contains {
        if b.is_empty() {
            errs.at(b, format!("{field}.body_contains"), "must not be empty");
        }
        out.push(Check::BodyContains(b.value.clone()));
    }
    if let Some(l) = &c.latency_below {
        if l.value.0.is_zero() {
            errs.at(l, format!("{field}.latency_below"), "must be longer than 0");
        }
        out.push(Check::LatencyBelow(l.value.0));
    }
    out
}
