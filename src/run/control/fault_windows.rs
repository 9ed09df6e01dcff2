//! Fault windows through the control API: header windows go to the workers' `HeaderFaults`
//! (`faults::live`) at once; server-side ones to the target's fault API on a task of their
//! own, whose outcome comes back to the run loop as a `Done`.

use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

use super::{Controller, DEFAULT_FAULT_SECS, Done, OpenFault, values};
use crate::faults::live::Spec;
use crate::faults::{self, RuleBody};
use crate::plan::FaultVia;
use crate::sinks::control::{FaultSpec, Refusal, Reply};

impl Controller {
    /// Whether `spec` is a header window (the scenario's window says, else `via`).
    pub(super) fn is_header(&self, spec: &FaultSpec) -> bool {
        match spec.window {
            Some(i) => self
                .plan
                .faults
                .get(i)
                .is_some_and(|w| w.via == FaultVia::Header),
            None => spec.via.as_deref() == Some("header"),
        }
    }

    /// Opens a header window now: the workers apply it from their next request on.
    pub(super) fn open_header(&mut self, spec: &FaultSpec) -> Result<Map<String, Value>, Refusal> {
        let Some(live) = &self.live else {
            return Err(Refusal::new(409, "no control API"));
        };
        let id = format!("c{}", self.next_id);
        let now = self.elapsed();
        let mut vals = values(json!({"id": id, "via": "header", "start_s": now.as_secs_f64()}));
        let opened = match spec.window {
            Some(i) => {
                let w = &self.plan.faults[i];
                let d = spec.duration_s.unwrap_or(w.duration.as_secs_f64());
                let kind = match w.kind {
                    crate::plan::FaultKind::Latency { .. } => "latency",
                    crate::plan::FaultKind::Error { .. } => "error",
                };
                vals.extend(values(json!({
                    "window": i, "kind": kind, "share": spec.share.unwrap_or(w.share),
                    "duration_s": d, "ops": w.ops,
                })));
                live.open_plan(&id, i, now, Duration::from_secs_f64(d), spec.share)
            }
            None => {
                let d = spec.duration_s.unwrap_or(DEFAULT_FAULT_SECS);
                let s = Spec {
                    status: spec
                        .status
                        .filter(|_| spec.kind.as_deref() == Some("error")),
                    delay_ms: spec.delay_ms.unwrap_or(0),
                    jitter_ms: spec.jitter_ms.unwrap_or(0),
                    share: spec.share.unwrap_or(1.0),
                    ops: spec.ops.clone().unwrap_or_default(),
                };
                vals.extend(values(json!({
                    "kind": spec.kind, "share": s.share, "duration_s": d, "ops": s.ops,
                    "delay_ms": spec.delay_ms, "jitter_ms": spec.jitter_ms, "status": s.status,
                })));
                live.open(&id, &s, now, Duration::from_secs_f64(d))
            }
        };
        opened.map_err(|m| Refusal::new(404, m))?;
        self.next_id += 1;
        self.open.push(OpenFault {
            id,
            rules: Vec::new(),
            values: vals.clone(),
            header: true,
        });
        Ok(vals)
    }

    /// The fault API rules of a request, and the values to record.
    pub(super) fn rules_for(
        &mut self,
        spec: &FaultSpec,
    ) -> Result<(Vec<RuleBody>, Map<String, Value>), Refusal> {
        let id = format!("c{}", self.next_id);
        let mut vals = values(json!({"id": id, "via": "server"}));
        let rules = match spec.window {
            Some(i) => {
                let Some(w) = self.plan.faults.get(i) else {
                    return Err(Refusal::new(
                        404,
                        format!(
                            "the scenario has {} fault window(s); no window {i}",
                            self.plan.faults.len()
                        ),
                    ));
                };
                let duration = spec.duration_s.unwrap_or(w.duration.as_secs_f64());
                let rules: Vec<RuleBody> = faults::server_rules(&self.plan)
                    .into_iter()
                    .filter(|(_, wi, _)| *wi == i)
                    .map(|(_, _, mut b)| {
                        b.duration_s = duration;
                        if let Some(s) = spec.share {
                            b.share = s;
                        }
                        b
                    })
                    .collect();
                if let Some(first) = rules.first() {
                    vals.extend(values(json!({
                        "window": i, "kind": first.kind, "share": first.share,
                        "duration_s": duration, "route": first.route, "method": first.method,
                    })));
                }
                rules
            }
            None => {
                let kind = if spec.kind.as_deref() == Some("latency") {
                    "latency"
                } else {
                    "error"
                };
                let b = RuleBody {
                    route: spec.route.clone(),
                    method: spec.method.as_ref().map(|m| m.to_ascii_uppercase()),
                    kind,
                    delay_ms: spec.delay_ms,
                    jitter_ms: spec.jitter_ms,
                    span: None,
                    status: spec.status,
                    share: spec.share.unwrap_or(1.0),
                    duration_s: spec.duration_s.unwrap_or(DEFAULT_FAULT_SECS),
                };
                vals.extend(values(json!({
                    "kind": kind, "share": b.share, "duration_s": b.duration_s,
                    "route": b.route, "method": b.method, "delay_ms": b.delay_ms,
                    "status": b.status,
                })));
                vec![b]
            }
        };
        if rules.is_empty() {
            return Err(Refusal::new(
                409,
                "that window has no rule the fault API can apply",
            ));
        }
        self.next_id += 1;
        vals.insert("start_s".into(), json!(self.elapsed().as_secs_f64()));
        Ok((rules, vals))
    }

    pub(super) fn open_fault(
        &self,
        rules: Vec<RuleBody>,
        values: Map<String, Value>,
        who: String,
        reply: oneshot::Sender<Reply>,
    ) {
        let (client, base, token, done) = (
            self.client.clone(),
            self.base.clone(),
            self.token.clone(),
            self.done_tx.clone(),
        );
        let id = values["id"].as_str().unwrap_or_default().to_string();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for body in &rules {
                match faults::post_rule(&client, &base, token.as_deref(), body).await {
                    Ok(rule) => ids.push(rule),
                    Err(e) => {
                        // All or nothing: take back what was set.
                        let _ = delete_rules(&client, &base, token.as_deref(), &ids).await;
                        let secrets: Vec<String> = token.iter().cloned().collect();
                        let refusal = Refusal::new(502, crate::secrets::scrub(&e, &secrets));
                        let _ = done.send(Done::Failed { reply, refusal });
                        return;
                    }
                }
            }
            let _ = done.send(Done::Opened {
                id,
                rules: ids,
                values,
                who,
                reply,
            });
        });
    }

    pub(super) fn close_fault(&self, f: OpenFault, who: String, reply: oneshot::Sender<Reply>) {
        let (client, base, token, done) = (
            self.client.clone(),
            self.base.clone(),
            self.token.clone(),
            self.done_tx.clone(),
        );
        tokio::spawn(async move {
            let errors = delete_rules(&client, &base, token.as_deref(), &f.rules).await;
            let mut values = Map::new();
            values.insert("id".into(), json!(f.id));
            let _ = done.send(Done::Closed {
                values,
                who,
                reply,
                errors,
            });
        });
    }
}

/// Deletes fault API rules (404 = already expired, fine); errors as text.
pub(super) async fn delete_rules(
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    ids: &[String],
) -> Vec<String> {
    let mut errors = Vec::new();
    for id in ids {
        let url = format!("{base}/admin/faults/{id}");
        let mut req = client.delete(&url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() || r.status() == reqwest::StatusCode::NOT_FOUND => {}
            Ok(r) => errors.push(format!("DELETE {url}: HTTP {}", r.status().as_u16())),
            Err(e) => errors.push(format!("DELETE {url}: {}", e.without_url())),
        }
    }
    errors
}
