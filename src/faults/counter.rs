//! Ground truth of server-side faults: the target's own `tp2devops_faults_injected_total`,
//! read from its `/metrics` before the load and after the last response; its change, minus
//! the generator's exact header faults, is what server-side rules injected.

use std::collections::BTreeMap;

use serde::Serialize;

use super::API_TIMEOUT;
use crate::plan::Plan;

/// `tp2devops_faults_injected_total` by (route, kind).
pub type Counter = BTreeMap<(String, String), f64>;

/// Reads `tp2devops_faults_injected_total{route,kind}` from a Prometheus text exposition.
/// `None` when the family is not there at all (not a todo-api, or an older one).
pub fn parse_fault_counter(text: &str) -> Option<Counter> {
    let mut out = Counter::new();
    let mut family = false;
    for line in text.lines() {
        if line.starts_with("# TYPE tp2devops_faults_injected ")
            || line.starts_with("# TYPE tp2devops_faults_injected_total ")
        {
            family = true;
            continue;
        }
        let Some(rest) = line.strip_prefix("tp2devops_faults_injected_total") else {
            continue;
        };
        family = true;
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => match r.split_once("} ") {
                Some(x) => x,
                None => continue,
            },
            None => ("", rest.trim_start()),
        };
        let label = |k: &str| {
            labels.split(',').find_map(|kv| {
                let (n, v) = kv.trim().split_once('=')?;
                (n == k).then(|| v.trim_matches('"').to_string())
            })
        };
        let Some(v) = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        *out.entry((
            label("route").unwrap_or_default(),
            label("kind").unwrap_or_default(),
        ))
        .or_insert(0.0) += v;
    }
    family.then_some(out)
}

/// The target's fault counter now, when the plan has fault windows (call it before the load
/// starts); `None` when there are none, or the target has no such counter.
pub async fn read_counter(plan: &Plan, base_url: &str) -> Option<Counter> {
    if plan.faults.is_empty() {
        return None;
    }
    let client = reqwest::Client::builder()
        .timeout(API_TIMEOUT)
        .build()
        .ok()?;
    scrape_counter(&client, base_url.trim_end_matches('/'))
        .await
        .ok()
        .flatten()
}

pub(super) async fn scrape_counter(
    client: &reqwest::Client,
    base: &str,
) -> Result<Option<Counter>, String> {
    let url = format!("{base}/metrics");
    let resp = client
        .get(&url)
        .header(reqwest::header::ACCEPT, "text/plain")
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", e.without_url()))?;
    if !resp.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", resp.status().as_u16()));
    }
    let text = resp
        .text()
        .await
        .map_err(|e| format!("GET {url}: {}", e.without_url()))?;
    Ok(parse_fault_counter(&text))
}

/// The target's fault counter over the run, next to the generator's header faults.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// After − before per (route, kind), absent before = 0; routes whose count moved.
    pub counted: Vec<(String, String, u64)>,
}

/// Faults by kind.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct ByKind {
    pub latency: u64,
    pub error: u64,
}

/// One route's count in the target's fault counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct RouteFaults {
    pub route: String,
    /// "latency" | "error"
    pub kind: String,
    pub injected: u64,
}

/// What the target itself counted (`tp2devops_faults_injected_total`, value after the load
/// minus value before it), split into the generator's header faults (exact, its own count)
/// and the rest: what server-side rules injected (into this run's and any other traffic).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct TargetFaults {
    /// Per route and kind, routes whose count moved.
    pub routes: Vec<RouteFaults>,
    /// Everything the target counted, by kind.
    pub counted: ByKind,
    /// The generator's header faults (its ground truth), by kind.
    pub header: ByKind,
    /// `counted − header`: injected by server-side rules.
    pub server: ByKind,
}

impl Measured {
    /// With the generator's header faults of the run.
    pub fn with_header(&self, header: ByKind) -> TargetFaults {
        let mut counted = ByKind::default();
        for (_, kind, n) in &self.counted {
            match kind.as_str() {
                "latency" => counted.latency += n,
                "error" => counted.error += n,
                _ => {}
            }
        }
        TargetFaults {
            routes: self
                .counted
                .iter()
                .map(|(route, kind, n)| RouteFaults {
                    route: route.clone(),
                    kind: kind.clone(),
                    injected: *n,
                })
                .collect(),
            counted,
            header,
            server: ByKind {
                latency: counted.latency.saturating_sub(header.latency),
                error: counted.error.saturating_sub(header.error),
            },
        }
    }
}

pub(super) fn measured(before: &Counter, after: &Counter) -> Measured {
    let counted = after
        .iter()
        .filter_map(|((route, kind), a)| {
            let b = before
                .get(&(route.clone(), kind.clone()))
                .copied()
                .unwrap_or(0.0);
            // A counter that went down means the target restarted: its count is all there is.
            let n = if a >= &b { a - b } else { *a };
            (n > 0.0).then(|| (route.clone(), kind.clone(), n.round() as u64))
        })
        .collect();
    Measured { counted }
}
