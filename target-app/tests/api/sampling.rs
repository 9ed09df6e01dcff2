//! The sampling contract: parent-based (a caller's sampled flag decides), roots per the
//! configured sampler, and a trace id shown in a log line or an exemplar only when its span is
//! sampled and exported. Spans are exported to memory here, so every shown id is checked
//! against what was exported. `/metrics`, `/health` and `/ready` are not traced by default.

use std::collections::BTreeSet;

use axum::body::Body;
use http::Method;
use serde_json::Value;
use todo_api::{Config, Sampler, SpanMemory};

use crate::support::{TestApp, req, test_config, with_config};

const SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const UNSAMPLED: &str = "00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

fn app_with(f: impl FnOnce(&mut Config)) -> (TestApp, SpanMemory) {
    let (mut config, lines) = test_config();
    config.trace_infra_routes = false;
    f(&mut config);
    let spans = config.span_memory.clone().unwrap_or_default();
    (with_config(config, lines), spans)
}

async fn list(app: &TestApp, traceparent: Option<&str>) {
    let mut b = req(Method::GET, "/api/todos");
    if let Some(tp) = traceparent {
        b = b.header("traceparent", tp);
    }
    assert_eq!(app.call(b.body(Body::empty()).unwrap()).await.status, 200);
}

fn exported_ids(spans: &SpanMemory) -> BTreeSet<(String, String)> {
    spans
        .lock()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s.span_context.trace_id().to_string(),
                s.span_context.span_id().to_string(),
            )
        })
        .collect()
}

/// (traceId, spanId) of every log line that has them; panics on a line with only one.
fn shown_ids(lines: &[Value]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| match (l.get("traceId"), l.get("spanId")) {
            (Some(t), Some(s)) => Some((t.as_str().unwrap().into(), s.as_str().unwrap().into())),
            (None, None) => None,
            _ => panic!("traceId without spanId or the reverse: {l}"),
        })
        .collect()
}

fn exemplar_ids(app: &TestApp) -> Vec<String> {
    app.state
        .render_metrics(true)
        .lines()
        .filter_map(|l| l.split("# {trace_id=\"").nth(1))
        .map(|r| r.split('"').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_caller_s_flag_decides_and_only_exported_ids_are_shown() {
    let (app, spans) = app_with(|_| {});
    list(&app, Some(SAMPLED)).await;
    list(&app, Some(UNSAMPLED)).await;
    list(&app, None).await;
    let exported = exported_ids(&spans);
    let traces: BTreeSet<&str> = exported.iter().map(|(t, _)| t.as_str()).collect();
    assert!(traces.contains("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert!(
        !traces.contains("5bf92f3577b34da6a3ce929d0e0e4736"),
        "an unsampled parent is not recorded"
    );
    assert_eq!(
        traces.len(),
        2,
        "sampled parent + always_on root: {traces:?}"
    );
    let shown = shown_ids(&app.log_lines());
    assert_eq!(
        shown.len(),
        4,
        "two lines each for the two sampled requests"
    );
    for id in &shown {
        assert!(exported.contains(id), "{id:?} shown but never exported");
    }
    for t in exemplar_ids(&app) {
        assert!(traces.contains(t.as_str()), "exemplar {t} not exported");
    }
}

#[tokio::test]
async fn roots_follow_the_sampler_and_parents_still_decide() {
    for sampler in [Sampler::AlwaysOff, Sampler::Ratio(0.0)] {
        let (app, spans) = app_with(|c| c.sampler = sampler);
        list(&app, None).await;
        assert!(exported_ids(&spans).is_empty(), "{sampler:?}");
        assert!(shown_ids(&app.log_lines()).is_empty(), "{sampler:?}");
        assert!(exemplar_ids(&app).is_empty(), "{sampler:?}");
        list(&app, Some(SAMPLED)).await;
        assert!(
            exported_ids(&spans)
                .iter()
                .all(|(t, _)| t == "4bf92f3577b34da6a3ce929d0e0e4736")
                && !exported_ids(&spans).is_empty(),
            "{sampler:?}: the sampled parent is honoured"
        );
    }
}

#[tokio::test]
async fn without_an_exporter_no_trace_id_is_shown() {
    let (app, _) = app_with(|c| c.span_memory = None);
    list(&app, Some(SAMPLED)).await;
    app.create("x").await;
    let lines = app.log_lines();
    assert_eq!(lines.len(), 4);
    assert!(shown_ids(&lines).is_empty(), "{lines:?}");
    assert!(exemplar_ids(&app).is_empty());
}

#[tokio::test]
async fn infra_routes_are_not_traced_unless_asked() {
    let (app, spans) = app_with(|_| {});
    for p in ["/health", "/ready", "/metrics"] {
        assert_eq!(app.get(p).await.status, 200);
    }
    assert!(exported_ids(&spans).is_empty());
    assert!(shown_ids(&app.log_lines()).is_empty());
    // Still counted.
    assert!(
        app.metrics()
            .contains(r#"route="/health",status_code="200"} 1"#)
    );

    let (app, spans) = app_with(|c| c.trace_infra_routes = true);
    for p in ["/health", "/ready", "/metrics"] {
        assert_eq!(app.get(p).await.status, 200);
    }
    let names: BTreeSet<String> = spans
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(
        names,
        ["GET /health", "GET /metrics", "GET /ready"]
            .map(String::from)
            .into()
    );
}
