//! The fault timeline at run time: which requests get fault headers (per request, the
//! generator's ground truth) and the server-side rules set through the todo-api's fault API.
//!
//! `HeaderFaults` is on the request hot path: it is built once from the plan (operation names
//! resolved to indexes) and `pick` does no allocation unless a window is active and chosen.
//! `ServerFaults` is a control-plane task: one `POST /admin/faults` per rule at the window's
//! start, with `duration_s` = the window's length so the rule expires on the server even if
//! this process dies; `stop` deletes what is still there.
//!
//! Ground truth of server-side faults: when the plan has fault windows, the target's own
//! `tp2devops_faults_injected_total` is read from its `/metrics` before the load (`read_counter`,
//! awaited before the first request is scheduled) and after it (every response received); the difference, minus the generator's exact header faults, is what the
//! server-side rules injected.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::plan::{FaultKind, FaultVia, FaultWindow, OpKind, Plan, TodoOp};

/// Fault headers for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderFault {
    /// Index into `plan.faults`.
    pub window: usize,
    /// `X-Fault-Delay` in milliseconds (jitter already applied).
    pub delay_ms: Option<u64>,
    /// `X-Fault-Status`.
    pub status: Option<u16>,
    /// `X-Fault-Span`.
    pub span: Option<String>,
}

impl HeaderFault {
    /// "latency" or "error" (the `kind` label and `Counts::faults_*`).
    pub fn kind(&self) -> &'static str {
        if self.status.is_some() {
            "error"
        } else {
            "latency"
        }
    }
}

/// The indexes (into `faults`) of the windows active at `elapsed` from the start of the load,
/// whatever their `via` (for `Snapshot::active_faults`, the timeline and the gauge).
pub fn active_windows(faults: &[FaultWindow], elapsed: Duration) -> Vec<usize> {
    faults
        .iter()
        .enumerate()
        .filter(|(_, w)| in_window(w.start, w.duration, elapsed))
        .map(|(i, _)| i)
        .collect()
}

fn in_window(start: Duration, duration: Duration, at: Duration) -> bool {
    at >= start && at < start + duration
}

/// One header window, resolved for the hot path.
#[derive(Debug, Clone)]
struct HeaderWindow {
    index: usize,
    start: Duration,
    end: Duration,
    /// `ops[i]` = operation `i` is affected; empty = every operation.
    ops: Vec<bool>,
    share: f64,
    delay_ms: u64,
    jitter_ms: u64,
    status: Option<u16>,
    span: Option<String>,
}

/// Decides per request (pure, seeded by the caller's rng) whether header faults apply.
#[derive(Debug, Clone)]
pub struct HeaderFaults {
    windows: Vec<HeaderWindow>,
    /// Header windows the control API opens during the run (`None` without a control API).
    live: Option<std::sync::Arc<live::LiveWindows>>,
}

impl HeaderFaults {
    pub fn new(plan: &Plan) -> Self {
        let op_names: Vec<&str> = plan
            .mix
            .operations
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        let windows = plan
            .faults
            .iter()
            .enumerate()
            .filter(|(_, w)| w.via == FaultVia::Header)
            .map(|(index, w)| {
                let ops = if w.ops.is_empty() {
                    Vec::new()
                } else {
                    op_names
                        .iter()
                        .map(|n| w.ops.iter().any(|o| o == n))
                        .collect()
                };
                let (delay_ms, jitter_ms, status, span) = match &w.kind {
                    FaultKind::Latency {
                        delay,
                        jitter,
                        span,
                    } => (millis(*delay), millis(*jitter), None, span.clone()),
                    FaultKind::Error { status } => (0, 0, Some(*status), None),
                };
                HeaderWindow {
                    index,
                    start: w.start,
                    end: w.start + w.duration,
                    ops,
                    share: w.share,
                    delay_ms,
                    jitter_ms,
                    status,
                    span,
                }
            })
            .collect();
        HeaderFaults {
            windows,
            live: None,
        }
    }

    /// These faults plus the windows the control API opens in `live` during the run.
    pub fn with_live(self, live: std::sync::Arc<live::LiveWindows>) -> Self {
        HeaderFaults {
            live: Some(live),
            ..self
        }
    }

    /// True when the plan has no header-fault windows and no control API can open one (the
    /// executor skips the call).
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty() && self.live.is_none()
    }

    /// `elapsed` = intended start offset of the request from the start of the load.
    ///
    /// The first active window (in plan order) whose op filter matches and whose share draw
    /// succeeds decides; the rng is only drawn from inside an active, matching window, so
    /// traffic outside windows keeps the same random sequence as a run without faults.
    pub fn pick(
        &self,
        op: usize,
        elapsed: Duration,
        rng: &mut impl rand::Rng,
    ) -> Option<HeaderFault> {
        for w in &self.windows {
            if elapsed < w.start || elapsed >= w.end {
                continue;
            }
            if !w.ops.is_empty() && !w.ops.get(op).copied().unwrap_or(false) {
                continue;
            }
            if w.share < 1.0 && rng.random::<f64>() >= w.share {
                continue;
            }
            if let Some(status) = w.status {
                return Some(HeaderFault {
                    window: w.index,
                    delay_ms: None,
                    status: Some(status),
                    span: None,
                });
            }
            let jitter = if w.jitter_ms > 0 {
                rng.random_range(0..=w.jitter_ms)
            } else {
                0
            };
            return Some(HeaderFault {
                window: w.index,
                delay_ms: Some(w.delay_ms + jitter),
                status: None,
                span: w.span.clone(),
            });
        }
        // Windows opened through the control API come after the plan's.
        self.live.as_ref().and_then(|l| l.pick(op, elapsed, rng))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The body of `POST /admin/faults` (the todo-api's `RuleSpec`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleBody {
    pub route: Option<String>,
    pub method: Option<String>,
    pub kind: &'static str,
    pub delay_ms: Option<u64>,
    pub jitter_ms: Option<u64>,
    pub span: Option<String>,
    pub status: Option<u16>,
    pub share: f64,
    pub duration_s: f64,
}

/// The rules to set for the server windows of `plan`: (offset from the start, window index,
/// body). A window with `ops` but no `route` targets each named built-in todo operation by its
/// route and method (the fault API matches on those, not on the generator's op names); ops
/// that are not built-in todo operations cannot be told apart server-side and are ignored.
pub fn server_rules(plan: &Plan) -> Vec<(Duration, usize, RuleBody)> {
    let mut out = Vec::new();
    for (i, w) in plan
        .faults
        .iter()
        .enumerate()
        .filter(|(_, w)| w.via == FaultVia::Server)
    {
        let (kind, delay_ms, jitter_ms, span, status) = match &w.kind {
            FaultKind::Latency {
                delay,
                jitter,
                span,
            } => (
                "latency",
                Some(millis(*delay)),
                Some(millis(*jitter)),
                span.clone(),
                None,
            ),
            FaultKind::Error { status } => ("error", None, None, None, Some(*status)),
        };
        let body = |route: Option<String>, method: Option<String>| RuleBody {
            route,
            method,
            kind,
            delay_ms,
            jitter_ms,
            span: span.clone(),
            status,
            share: w.share,
            duration_s: w.duration.as_secs_f64(),
        };
        let mut targets: Vec<(String, String)> = Vec::new();
        if w.route.is_none() {
            for name in &w.ops {
                let Some(op) = plan.mix.operations.iter().find(|o| &o.name == name) else {
                    continue;
                };
                if let OpKind::Todo(t) = op.kind {
                    let rm = todo_route(t);
                    let rm = (rm.0.to_string(), rm.1.to_string());
                    if w.method
                        .as_ref()
                        .is_none_or(|m| m.eq_ignore_ascii_case(&rm.1))
                        && !targets.contains(&rm)
                    {
                        targets.push(rm);
                    }
                }
            }
        }
        if targets.is_empty() {
            out.push((w.start, i, body(w.route.clone(), w.method.clone())));
        } else {
            out.extend(
                targets
                    .into_iter()
                    .map(|(r, m)| (w.start, i, body(Some(r), Some(m)))),
            );
        }
    }
    out.sort_by_key(|(start, i, _)| (*start, *i));
    out
}

/// The route template (as the todo-api labels it) and method of a built-in operation.
pub fn todo_route(op: TodoOp) -> (&'static str, &'static str) {
    match op {
        TodoOp::Create => ("/api/todos", "POST"),
        TodoOp::List => ("/api/todos", "GET"),
        TodoOp::Get => ("/api/todos/:id", "GET"),
        TodoOp::Update => ("/api/todos/:id", "PUT"),
        TodoOp::Toggle => ("/api/todos/:id", "PATCH"),
        TodoOp::Delete => ("/api/todos/:id", "DELETE"),
    }
}

#[derive(Debug, Default)]
struct Shared {
    /// Rule ids the server returned, in the order they were set.
    ids: Vec<String>,
    errors: Vec<String>,
    /// Windows whose rule could not be set: (index into `plan.faults`, why), in order.
    failed: Vec<(usize, String)>,
    /// The target's fault counter before the load (None: not read in time, or no counter).
    before: Option<Counter>,
}

/// Server-side fault windows: sets each rule through `POST {base}/admin/faults` at its start
/// (the rule expires by itself at the window's end) and clears them on `stop`.
pub struct ServerFaults {
    task: Option<tokio::task::JoinHandle<()>>,
    shared: Arc<Mutex<Shared>>,
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// Control-plane calls must not hang the end of a run.
const API_TIMEOUT: Duration = Duration::from_secs(10);

impl ServerFaults {
    /// `start` is the instant the load started; `token` the fault API bearer token.
    pub fn spawn(
        plan: &Plan,
        base_url: String,
        token: Option<String>,
        start: tokio::time::Instant,
    ) -> ServerFaults {
        let base = base_url.trim_end_matches('/').to_string();
        let client = reqwest::Client::builder()
            .timeout(API_TIMEOUT)
            .build()
            .unwrap_or_default();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let rules = server_rules(plan);
        let task = (!rules.is_empty()).then(|| {
            let (client, base, token, shared) =
                (client.clone(), base.clone(), token.clone(), shared.clone());
            tokio::spawn(async move {
                for (offset, window, body) in rules {
                    tokio::time::sleep_until(start + offset).await;
                    let result = post_rule(&client, &base, token.as_deref(), &body).await;
                    let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
                    match result {
                        Ok(id) => s.ids.push(id),
                        Err(e) => {
                            s.errors.push(format!("fault window {window}: {e}"));
                            // A window of several rules (one per route) fails once.
                            if !s.failed.iter().any(|(w, _)| *w == window) {
                                s.failed.push((window, e));
                            }
                        }
                    }
                }
            })
        });
        ServerFaults {
            task,
            shared,
            client,
            base,
            token,
        }
    }

    /// The target's fault counter before the load, read by `read_counter`: makes
    /// `stop_and_measure` report the counter's change over the run.
    pub fn set_before(&mut self, before: Option<Counter>) {
        self.shared.lock().unwrap_or_else(|p| p.into_inner()).before = before;
    }

    /// Rule ids set so far (for the report and tests).
    pub fn rule_ids(&self) -> Vec<String> {
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ids
            .clone()
    }

    /// The windows whose rule could not be set so far: (index into `plan.faults`, why), in
    /// the order they failed. The run loop polls it to mark them failed as they happen.
    pub fn failed_windows(&self) -> Vec<(usize, String)> {
        let secrets: Vec<String> = self.token.iter().cloned().collect();
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .failed
            .iter()
            .map(|(w, e)| (*w, crate::secrets::scrub(e, &secrets)))
            .collect()
    }

    /// Cancels pending windows and deletes the rules this run set. Errors are returned as text.
    pub async fn stop(self) -> Vec<String> {
        self.stop_and_measure().await.0
    }

    /// `stop`, and the target's fault counter over the run (after − before) when it could be
    /// read both before the load and now (call it once every response has arrived).
    pub async fn stop_and_measure(mut self) -> (Vec<String>, Option<Measured>) {
        let before = self
            .shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .before
            .take();
        let measured = match before {
            Some(before) => match scrape_counter(&self.client, &self.base).await {
                Ok(Some(after)) => Some(measured(&before, &after)),
                _ => None,
            },
            None => None,
        };
        let secrets: Vec<String> = self.token.iter().cloned().collect();
        let errors = self
            .delete_rules()
            .await
            .into_iter()
            .map(|e| crate::secrets::scrub(&e, &secrets))
            .collect();
        (errors, measured)
    }

    async fn delete_rules(&mut self) -> Vec<String> {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        let (ids, mut errors) = {
            let mut s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
            (std::mem::take(&mut s.ids), std::mem::take(&mut s.errors))
        };
        for id in ids {
            let url = format!("{}/admin/faults/{id}", self.base);
            let mut req = self.client.delete(&url);
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            match req.send().await {
                // 404: the rule already expired at the window's end, which is the normal case.
                Ok(r)
                    if r.status().is_success() || r.status() == reqwest::StatusCode::NOT_FOUND => {}
                Ok(r) => errors.push(format!("DELETE {url}: HTTP {}", r.status().as_u16())),
                Err(e) => errors.push(format!("DELETE {url}: {}", e.without_url())),
            }
        }
        errors
    }
}

impl Drop for ServerFaults {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub(crate) async fn post_rule(
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    body: &RuleBody,
) -> Result<String, String> {
    let url = format!("{base}/admin/faults");
    let mut req = client.post(&url).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("POST {url}: {}", e.without_url()))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| format!("POST {url}: reading the answer: {e}"))?;
    if !status.is_success() {
        let hint = match status.as_u16() {
            401 => " (wrong or missing fault token)",
            404 => " (the target has no fault API: no token configured)",
            _ => "",
        };
        return Err(format!(
            "POST {url}: HTTP {}{hint}: {}",
            status.as_u16(),
            text.chars().take(200).collect::<String>()
        ));
    }
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("POST {url}: answer is not JSON: {e}"))?;
    v.get("id")
        .and_then(|id| {
            id.as_str()
                .map(str::to_string)
                .or_else(|| id.as_u64().map(|n| n.to_string()))
        })
        .ok_or_else(|| format!("POST {url}: answer has no \"id\""))
}

mod counter;
pub mod live;
pub use counter::{
    ByKind, Counter, Measured, RouteFaults, TargetFaults, parse_fault_counter, read_counter,
};
use counter::{measured, scrape_counter};

#[cfg(test)]
mod tests;
