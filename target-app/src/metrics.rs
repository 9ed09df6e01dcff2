//! The `tp2devops_*` series of DESIGN.md (the seed's names, labels and buckets) and their two
//! encodings: the classic Prometheus text format, and OpenMetrics with the trace id as an
//! exemplar on the duration buckets and the request counter.
//!
//! Written by hand rather than through a client library: the contract is six fixed series, and
//! owning the encoder keeps both formats exact (the seed's `_total` counter name in each
//! format, exemplars only where OpenMetrics was negotiated).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::store::Store;

/// The seed's histogram buckets, seconds.
pub const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone)]
struct Exemplar {
    trace_id: String,
    value: f64,
    /// Unix seconds.
    at: f64,
}

#[derive(Debug, Default)]
struct Series {
    count: u64,
    sum: f64,
    /// Non-cumulative counts per bucket; the last one is +Inf.
    buckets: [u64; BUCKETS.len() + 1],
    bucket_exemplars: [Option<Exemplar>; BUCKETS.len() + 1],
    last: Option<Exemplar>,
}

#[derive(Default)]
struct State {
    http: BTreeMap<(String, String, u16), Series>,
    operations: BTreeMap<&'static str, u64>,
    faults: BTreeMap<(String, &'static str), u64>,
    rejected: BTreeMap<u16, u64>,
}

/// One instance's metrics. Every update takes one short lock: this is the target app, whose
/// per-request cost is dominated by the request itself.
#[derive(Default)]
pub struct Metrics {
    state: Mutex<State>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One finished HTTP request.
    pub fn observe_request(
        &self,
        method: &str,
        route: &str,
        status: u16,
        elapsed: Duration,
        trace_id: Option<&str>,
    ) {
        let secs = elapsed.as_secs_f64();
        // Only a shown (sampled and exported) trace id becomes an exemplar; otherwise the
        // bucket keeps its previous one.
        let ex = trace_id.map(|t| Exemplar {
            trace_id: t.to_string(),
            value: secs,
            at: unix_now(),
        });
        let mut s = self.lock();
        let series = s
            .http
            .entry((method.to_string(), route.to_string(), status))
            .or_default();
        series.count += 1;
        series.sum += secs;
        let i = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        series.buckets[i] += 1;
        if let Some(ex) = ex {
            series.bucket_exemplars[i] = Some(ex.clone());
            series.last = Some(Exemplar { value: 1.0, ..ex });
        }
    }

    /// Makes the request series exist (at 0 until a request counts), so `increase()` and
    /// exact before/after deltas see it from the first scrape on.
    pub fn ensure_request(&self, method: &str, route: &str, status: u16) {
        self.lock()
            .http
            .entry((method.to_string(), route.to_string(), status))
            .or_default();
    }

    /// Makes the fault series exist at 0 (see `ensure_request`).
    pub fn ensure_fault(&self, route: &str, kind: &'static str) {
        self.lock()
            .faults
            .entry((route.to_string(), kind))
            .or_default();
    }

    /// One request head hyper could not parse or that timed out, answered with `status` before
    /// any route ran.
    pub fn observe_rejection(&self, status: u16) {
        *self.lock().rejected.entry(status).or_default() += 1;
    }

    /// One todo operation (`create`, `read`, `update`, `delete`, `list`).
    pub fn observe_operation(&self, op: &'static str) {
        *self.lock().operations.entry(op).or_default() += 1;
    }

    /// One injected fault (`kind`: `latency` | `error`).
    pub fn observe_fault(&self, route: &str, kind: &'static str) {
        *self
            .lock()
            .faults
            .entry((route.to_string(), kind))
            .or_default() += 1;
    }

    /// The value of `tp2devops_http_requests_total` for one label set (tests, embedding).
    pub fn requests(&self, method: &str, route: &str, status: u16) -> u64 {
        self.lock()
            .http
            .get(&(method.to_string(), route.to_string(), status))
            .map_or(0, |s| s.count)
    }

    /// `dropped_logs`: the logger's count of lines it had to drop.
    pub fn render(&self, store: &Store, dropped_logs: u64, openmetrics: bool) -> String {
        let counts = store.counts();
        let s = self.lock();
        let mut out = String::with_capacity(4096);
        let om = openmetrics;

        family(
            &mut out,
            om,
            "tp2devops_http_requests",
            "counter",
            "Total HTTP requests",
        );
        for ((method, route, status), series) in &s.http {
            let labels = format!(
                "method=\"{}\",route=\"{}\",status_code=\"{status}\"",
                esc(method),
                esc(route)
            );
            let _ = write!(
                out,
                "tp2devops_http_requests_total{{{labels}}} {}",
                series.count
            );
            exemplar(&mut out, om, series.last.as_ref());
        }

        family(
            &mut out,
            om,
            "tp2devops_http_request_duration_seconds",
            "histogram",
            "HTTP request duration",
        );
        for ((method, route, status), series) in &s.http {
            let labels = format!(
                "method=\"{}\",route=\"{}\",status_code=\"{status}\"",
                esc(method),
                esc(route)
            );
            let mut cumulative = 0;
            for (i, n) in series.buckets.iter().enumerate() {
                cumulative += n;
                let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
                let _ = write!(
                    out,
                    "tp2devops_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
                exemplar(&mut out, om, series.bucket_exemplars[i].as_ref());
            }
            let _ = writeln!(
                out,
                "tp2devops_http_request_duration_seconds_sum{{{labels}}} {}",
                series.sum
            );
            let _ = writeln!(
                out,
                "tp2devops_http_request_duration_seconds_count{{{labels}}} {}",
                series.count
            );
        }

        family(
            &mut out,
            om,
            "tp2devops_todo_operations",
            "counter",
            "Todo CRUD operations",
        );
        for (op, n) in &s.operations {
            let _ = writeln!(
                out,
                "tp2devops_todo_operations_total{{operation=\"{op}\"}} {n}"
            );
        }

        family(
            &mut out,
            om,
            "tp2devops_todos_active",
            "gauge",
            "Number of active (not completed) todos",
        );
        let _ = writeln!(out, "tp2devops_todos_active {}", counts.active);
        family(
            &mut out,
            om,
            "tp2devops_todos_completed",
            "gauge",
            "Number of completed todos",
        );
        let _ = writeln!(out, "tp2devops_todos_completed {}", counts.completed);

        family(
            &mut out,
            om,
            "tp2devops_faults_injected",
            "counter",
            "Faults injected into requests",
        );
        for ((route, kind), n) in &s.faults {
            let _ = writeln!(
                out,
                "tp2devops_faults_injected_total{{route=\"{}\",kind=\"{kind}\"}} {n}",
                esc(route)
            );
        }

        family(
            &mut out,
            om,
            "tp2devops_http_rejected",
            "counter",
            "Requests answered before routing: unparsable or timed-out heads",
        );
        for (status, n) in &s.rejected {
            let _ = writeln!(
                out,
                "tp2devops_http_rejected_total{{status_code=\"{status}\"}} {n}"
            );
        }

        family(
            &mut out,
            om,
            "tp2devops_log_lines_dropped",
            "counter",
            "Log lines dropped because the output could not keep up",
        );
        let _ = writeln!(out, "tp2devops_log_lines_dropped_total {dropped_logs}");
        if om {
            out.push_str("# EOF\n");
        }
        out
    }
}

/// HELP and TYPE lines. OpenMetrics names a counter family without its `_total` suffix; the
/// classic format names it after the sample.
fn family(out: &mut String, om: bool, name: &str, kind: &str, help: &str) {
    let name = if !om && kind == "counter" {
        format!("{name}_total")
    } else {
        name.to_string()
    };
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Ends a sample line, with ` # {trace_id="…"} value timestamp` in OpenMetrics.
fn exemplar(out: &mut String, om: bool, ex: Option<&Exemplar>) {
    if let (true, Some(ex)) = (om, ex) {
        let _ = write!(
            out,
            " # {{trace_id=\"{}\"}} {} {:.3}",
            ex.trace_id, ex.value, ex.at
        );
    }
    out.push('\n');
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Whether a scrape's `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_buckets_and_exemplars_only_in_openmetrics() {
        let m = Metrics::default();
        let store = Store::new(10);
        m.observe_request(
            "GET",
            "/api/todos",
            200,
            Duration::from_millis(3),
            Some("aaaa"),
        );
        m.observe_request(
            "GET",
            "/api/todos",
            200,
            Duration::from_millis(30),
            Some("bbbb"),
        );
        let text = m.render(&store, 0, false);
        assert!(text.contains("# TYPE tp2devops_http_requests_total counter"));
        assert!(text.contains(r#"tp2devops_http_request_duration_seconds_bucket{method="GET",route="/api/todos",status_code="200",le="0.005"} 1"#));
        assert!(text.contains(r#"le="0.05"} 2"#));
        assert!(text.contains(r#"le="+Inf"} 2"#));
        assert!(!text.contains("trace_id"));
        let om = m.render(&store, 0, true);
        assert!(om.contains("# TYPE tp2devops_http_requests counter"));
        assert!(om.contains(r#"le="0.005"} 1 # {trace_id="aaaa"} 0.003 "#));
        assert!(om.ends_with("# EOF\n"));
    }

    #[test]
    fn unshown_trace_ids_keep_the_previous_exemplar_and_zero_series_exist() {
        let m = Metrics::default();
        let store = Store::new(10);
        m.ensure_request("POST", "/api/todos", 503);
        m.ensure_fault("/api/todos", "error");
        let om = m.render(&store, 3, true);
        assert!(om.contains(
            "tp2devops_http_requests_total{method=\"POST\",route=\"/api/todos\",status_code=\"503\"} 0\n"
        ));
        assert!(
            om.contains("tp2devops_faults_injected_total{route=\"/api/todos\",kind=\"error\"} 0\n")
        );
        assert!(om.contains("tp2devops_log_lines_dropped_total 3\n"));
        m.observe_request(
            "GET",
            "/api/todos",
            200,
            Duration::from_millis(3),
            Some("aaaa"),
        );
        m.observe_request("GET", "/api/todos", 200, Duration::from_millis(3), None);
        let om = m.render(&store, 0, true);
        assert!(
            om.contains(r#"le="0.005"} 2 # {trace_id="aaaa"} 0.003 "#),
            "{om}"
        );
    }
}
