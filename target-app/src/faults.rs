//! Fault injection, off unless configured: per-request `X-Fault-Delay` / `X-Fault-Status` /
//! `X-Fault-Span` headers (when `faults_enabled`), and time-boxed rules set through
//! `/admin/faults` (when a token is configured). Rules expire by themselves: an expired rule
//! never matches and is pruned on the next read or write.
//!
//! A decided `Fault` travels with the request; the handler applies it inside the span it names,
//! so the slowed or failed span carries `fault.kind` / `fault.delay_ms`.

use std::sync::Mutex;
use std::time::Duration;

use axum::http::HeaderMap;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Longest delay a fault may add, `delay_ms + jitter_ms` (headers and rules).
pub const MAX_DELAY_MS: u64 = 60_000;
/// Live rules at most; one more is refused with `409 too_many_rules`.
pub const MAX_RULES: usize = 100;
/// The routes a rule may name.
pub const ROUTES: [&str; 2] = ["/api/todos", "/api/todos/:id"];

/// The operation spans of a request (`METHOD route`), the operation's span first; empty when
/// no todo operation answers it.
pub fn spans_of(method: &str, route: &str) -> &'static [&'static str] {
    match (method.to_ascii_uppercase().as_str(), route) {
        ("POST", "/api/todos") => &[
            "create_todo",
            "validation",
            "todo_creation",
            "metrics_update",
        ],
        ("GET", "/api/todos") => &["list_todos"],
        ("GET", "/api/todos/:id") => &["get_todo"],
        ("PUT" | "PATCH", "/api/todos/:id") => &["update_todo"],
        ("DELETE", "/api/todos/:id") => &["delete_todo"],
        _ => &[],
    }
}

/// The methods a route answers.
fn methods_of(route: &str) -> &'static [&'static str] {
    match route {
        "/api/todos" => &["GET", "POST"],
        "/api/todos/:id" => &["GET", "PUT", "PATCH", "DELETE"],
        _ => &[],
    }
}

/// What to do to one request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fault {
    pub delay: Duration,
    pub status: Option<u16>,
    /// Child span to slow (`validation`, `todo_creation`, …); `None` = the operation's span.
    pub span: Option<String>,
}

impl Fault {
    pub fn kind(&self) -> &'static str {
        if self.status.is_some() {
            "error"
        } else {
            "latency"
        }
    }
}

/// The per-request headers, read only when faults are enabled. Invalid values are ignored
/// (a fault header must never turn a good request into a 4xx).
pub fn from_headers(h: &HeaderMap) -> Option<Fault> {
    let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::trim);
    let delay = get("x-fault-delay")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&ms| ms <= MAX_DELAY_MS);
    let status = get("x-fault-status")
        .and_then(|v| v.parse::<u16>().ok())
        .filter(|s| (400..=599).contains(s));
    if delay.is_none() && status.is_none() {
        return None;
    }
    Some(Fault {
        delay: Duration::from_millis(delay.unwrap_or(0)),
        status,
        span: get("x-fault-span")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    })
}

/// The body of `POST /admin/faults`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(default)]
    pub route: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    pub kind: RuleKind,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    #[serde(default)]
    pub jitter_ms: Option<u64>,
    #[serde(default)]
    pub span: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default = "one")]
    pub share: f64,
    pub duration_s: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    Latency,
    Error,
}

impl RuleSpec {
    /// The `(method, route)` pairs the rule can match.
    fn targets(&self) -> Vec<(&'static str, &'static str)> {
        ROUTES
            .iter()
            .filter(|r| self.route.as_deref().is_none_or(|x| x == **r))
            .flat_map(|r| methods_of(r).iter().map(move |m| (*m, *r)))
            .filter(|(m, _)| {
                self.method
                    .as_deref()
                    .is_none_or(|x| x.eq_ignore_ascii_case(m))
            })
            .collect()
    }

    /// Every problem of the spec, as one message. `route`, `method` and `span` must name
    /// something that exists (the message lists what does); `delay_ms` also applies to error
    /// rules (the error is answered after the delay).
    pub fn validate(&self) -> Result<(), String> {
        let mut problems: Vec<String> = Vec::new();
        match self.kind {
            RuleKind::Latency => {
                if self.delay_ms.is_none_or(|d| d == 0) {
                    problems.push("latency rules need delay_ms >= 1".into());
                }
            }
            RuleKind::Error => {
                if self.status.is_none_or(|s| !(400..=599).contains(&s)) {
                    problems.push("error rules need status in 400..=599".into());
                }
            }
        }
        let delay = self
            .delay_ms
            .unwrap_or(0)
            .saturating_add(self.jitter_ms.unwrap_or(0));
        if delay > MAX_DELAY_MS {
            problems.push(format!(
                "delay_ms + jitter_ms must be at most {MAX_DELAY_MS} (got {delay})"
            ));
        }
        if let Some(r) = &self.route
            && !ROUTES.contains(&r.as_str())
        {
            problems.push(format!(
                "unknown route {r:?}; valid routes: {}",
                ROUTES.join(", ")
            ));
        }
        if let Some(m) = &self.method {
            let valid: Vec<&str> = match &self.route {
                Some(r) if ROUTES.contains(&r.as_str()) => methods_of(r).to_vec(),
                _ => vec!["GET", "POST", "PUT", "PATCH", "DELETE"],
            };
            if !valid.iter().any(|v| v.eq_ignore_ascii_case(m)) {
                problems.push(format!(
                    "method {m:?} does not exist on {}; valid methods: {}",
                    self.route.as_deref().unwrap_or("any route"),
                    valid.join(", ")
                ));
            }
        }
        if let Some(span) = &self.span {
            let mut valid: Vec<&str> = self
                .targets()
                .iter()
                .flat_map(|(m, r)| spans_of(m, r).iter().copied())
                .collect();
            valid.sort_unstable();
            valid.dedup();
            if !valid.contains(&span.as_str()) {
                problems.push(format!(
                    "unknown span {span:?} for this route and method; valid spans: {}",
                    valid.join(", ")
                ));
            }
        }
        if !(self.share > 0.0 && self.share <= 1.0) {
            problems.push("share must be in (0, 1]".into());
        }
        if !(self.duration_s > 0.0 && self.duration_s <= 86_400.0) {
            problems.push("duration_s must be in (0, 86400]".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// An active rule as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RuleView {
    pub id: String,
    #[serde(flatten)]
    pub spec: RuleSpec,
    pub expires_at: String,
}

struct Rule {
    view: RuleView,
    expires: Instant,
}

#[derive(Default)]
pub struct Rules {
    rules: Mutex<Vec<Rule>>,
    next: Mutex<u64>,
}

impl Rules {
    fn live(&self) -> std::sync::MutexGuard<'_, Vec<Rule>> {
        let mut g = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        g.retain(|r| r.expires > now);
        g
    }

    /// Adds a rule, unless `MAX_RULES` are live already (`Err` with that bound).
    pub fn add(&self, mut spec: RuleSpec) -> Result<RuleView, usize> {
        // Accept axum's template syntax too; labels and matching use the seed's `:id`.
        spec.route = spec.route.map(|r| r.replace("{id}", ":id"));
        let id = {
            let mut n = self.next.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            format!("f{}", *n)
        };
        let ttl = Duration::from_secs_f64(spec.duration_s);
        let expires_at = time::OffsetDateTime::now_utc() + ttl;
        let view = RuleView {
            id,
            spec,
            expires_at: expires_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        };
        let mut live = self.live();
        if live.len() >= MAX_RULES {
            return Err(MAX_RULES);
        }
        live.push(Rule {
            view: view.clone(),
            expires: Instant::now() + ttl,
        });
        Ok(view)
    }

    pub fn list(&self) -> Vec<RuleView> {
        self.live().iter().map(|r| r.view.clone()).collect()
    }

    pub fn remove(&self, id: &str) -> bool {
        let mut g = self.live();
        let before = g.len();
        g.retain(|r| r.view.id != id);
        g.len() != before
    }

    pub fn clear(&self) -> usize {
        let mut g = self.live();
        let n = g.len();
        g.clear();
        n
    }

    /// The first live rule matching the request, drawn against its share.
    pub fn pick(&self, method: &str, route: &str) -> Option<Fault> {
        let g = self.live();
        let mut rng = rand::rng();
        for r in g.iter() {
            let s = &r.view.spec;
            if s.route.as_deref().is_some_and(|x| x != route)
                || s.method
                    .as_deref()
                    .is_some_and(|m| !m.eq_ignore_ascii_case(method))
            {
                continue;
            }
            if rng.random::<f64>() >= s.share {
                continue;
            }
            let jitter = s.jitter_ms.unwrap_or(0);
            let extra = if jitter > 0 {
                rng.random_range(0..=jitter)
            } else {
                0
            };
            return Some(Fault {
                delay: Duration::from_millis(s.delay_ms.unwrap_or(0).saturating_add(extra)),
                status: match s.kind {
                    RuleKind::Latency => None,
                    RuleKind::Error => s.status,
                },
                span: s.span.clone(),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: RuleKind) -> RuleSpec {
        RuleSpec {
            route: Some("/api/todos".into()),
            method: None,
            kind,
            delay_ms: Some(100),
            jitter_ms: None,
            span: None,
            status: Some(503),
            share: 1.0,
            duration_s: 5.0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rules_match_then_expire_by_themselves() {
        let rules = Rules::default();
        rules.add(spec(RuleKind::Error)).unwrap();
        assert_eq!(
            rules.pick("GET", "/api/todos").and_then(|f| f.status),
            Some(503)
        );
        assert!(rules.pick("GET", "/api/todos/:id").is_none());
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(rules.pick("GET", "/api/todos").is_none());
        assert!(rules.list().is_empty());
    }

    #[test]
    fn validation_lists_every_problem() {
        let mut s = spec(RuleKind::Latency);
        s.delay_ms = None;
        s.share = 2.0;
        let e = s.validate().unwrap_err();
        assert!(e.contains("delay_ms") && e.contains("share"), "{e}");
    }
}
