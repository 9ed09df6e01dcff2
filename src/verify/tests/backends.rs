//! `verify` for real stacks against in-test servers: per-backend headers from the
//! environment, the backend selection (skipped, not passed), the exact `promql_delta`, and
//! backends nobody answers for (reported at once with the cause).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::*;

/// An in-test backend that records the headers of every request and answers Prometheus'
/// shape; the instant value depends on `time` (before the run's start: 5, else 12).
async fn recording_backend() -> (
    String,
    Arc<std::sync::Mutex<Vec<(String, axum::http::HeaderMap)>>>,
) {
    use axum::extract::{OriginalUri, Query};
    use axum::routing::get;
    use std::collections::HashMap;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let app = axum::Router::new().fallback(get(
        move |OriginalUri(uri): OriginalUri,
              headers: axum::http::HeaderMap,
              Query(q): Query<HashMap<String, String>>| async move {
            s.lock().unwrap().push((uri.path().to_string(), headers));
            let t: f64 = q.get("time").and_then(|t| t.parse().ok()).unwrap_or(0.0);
            // The report's run starts at 1767323045 (2026-01-02T03:04:05Z).
            let v = if t < 1767323045.0 { "5" } else { "12" };
            let result = if q.get("query").is_some_and(|q| q.contains("absent_before")) && t < 1767323045.0 {
                json!([])
            } else {
                json!([{"metric":{},"value":[t, v]}])
            };
            match uri.path() {
                "/api/v1/query" => axum::Json(json!({"status":"success","data":{"resultType":"vector","result":result}})),
                "/loki/api/v1/query_range" => axum::Json(json!({"status":"success","data":{"resultType":"streams","result":[{"stream":{},"values":[["1","x"]]}]}})),
                _ => axum::Json(json!({"traces":[{"traceID":"ab"}]})),
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn promql(name: &str, query: &str, expect: Expect) -> Assertion {
    assertion(
        name,
        AssertionKind::Promql {
            query: query.into(),
            expect,
        },
    )
}

#[tokio::test]
async fn per_backend_headers_from_the_environment_arrive() {
    let (url, seen) = recording_backend().await;
    let env = |k: &str| match k {
        "TRAFFICGEN_PROMETHEUS_HEADERS" => Some("Authorization=Bearer%20prom-t0ken".to_string()),
        "TRAFFICGEN_LOKI_HEADERS" => {
            Some("Authorization=Basic%20dXNlcjpwYXNz, X-Scope-OrgID=tenant-1".to_string())
        }
        "TRAFFICGEN_TEMPO_HEADERS" => Some("X-Scope-OrgID=tenant-2".to_string()),
        _ => None,
    };
    let clients = Clients::from_lookup(env).unwrap();
    let mut v = verify_with(
        &url,
        vec![
            promql("p", "up", Expect::NonEmpty),
            assertion(
                "l",
                AssertionKind::Logql {
                    query: "{a=\"b\"}".into(),
                    expect: Expect::NonEmpty,
                },
            ),
            assertion(
                "t",
                AssertionKind::Traceql {
                    query: "{}".into(),
                    expect: Expect::NonEmpty,
                },
            ),
        ],
    );
    v.prometheus_url = Some(url.clone());
    let results = run_with(&v, &report(), &clients).await;
    assert!(results.iter().all(|r| r.passed), "{results:?}");
    let seen = seen.lock().unwrap();
    let get = |path: &str, h: &str| {
        seen.iter()
            .find(|(p, _)| p == path)
            .and_then(|(_, m)| m.get(h))
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(
        get("/api/v1/query", "authorization").as_deref(),
        Some("Bearer prom-t0ken")
    );
    assert_eq!(get("/api/v1/query", "x-scope-orgid"), None);
    assert_eq!(
        get("/loki/api/v1/query_range", "authorization").as_deref(),
        Some("Basic dXNlcjpwYXNz")
    );
    assert_eq!(
        get("/loki/api/v1/query_range", "x-scope-orgid").as_deref(),
        Some("tenant-1")
    );
    assert_eq!(
        get("/api/search", "x-scope-orgid").as_deref(),
        Some("tenant-2")
    );
    assert_eq!(get("/api/search", "authorization"), None);
    // A malformed variable is an error naming it, never quoting the value.
    let e = Clients::from_lookup(|k| {
        (k == "TRAFFICGEN_LOKI_HEADERS").then(|| "Authorization Bearer s3cr3t".to_string())
    })
    .unwrap_err();
    assert!(
        e.contains("TRAFFICGEN_LOKI_HEADERS") && !e.contains("s3cr3t"),
        "{e}"
    );
}

#[tokio::test]
async fn promql_delta_is_end_minus_start_with_absent_as_zero() {
    let (url, _) = recording_backend().await;
    let delta = |name: &str, q: &str, n: f64| {
        assertion(
            name,
            AssertionKind::PromqlDelta {
                query: q.into(),
                expect: cmp(
                    Comparison::Eq,
                    Expected::Number(n),
                    Tolerance::Absolute(0.0),
                ),
            },
        )
    };
    let mut v = verify_with(
        &url,
        vec![
            delta("present", "x", 7.0),
            delta("born during the run", "absent_before", 12.0),
        ],
    );
    v.prometheus_url = Some(url.clone());
    let results = run_with(&v, &report(), &Clients::default()).await;
    assert!(results.iter().all(|r| r.passed), "{results:?}");
    assert_eq!(results[0].observed, Some(7.0));
    assert_eq!(results[1].observed, Some(12.0));
}

#[tokio::test]
async fn unselected_backends_are_skipped_not_passed() {
    let (url, seen) = recording_backend().await;
    let mut v = verify_with(
        &url,
        vec![
            promql("p", "up", Expect::NonEmpty),
            assertion(
                "l",
                AssertionKind::Logql {
                    query: "{a=\"b\"}".into(),
                    expect: Expect::NonEmpty,
                },
            ),
            assertion(
                "t",
                AssertionKind::Traces {
                    which: TraceSet::Slowest,
                    limit: 1,
                    slowest_span: None,
                },
            ),
        ],
    );
    v.prometheus_url = Some(url.clone());
    let sel =
        Selection::from_lookup(&|k: &str| (k == BACKENDS_VAR).then(|| "Prometheus".to_string()))
            .unwrap();
    let results = run_selected(&v, &report(), &Clients::default(), &sel).await;
    assert!(results[0].passed && !results[0].skipped, "{:?}", results[0]);
    for r in &results[1..] {
        assert!(r.skipped && !r.passed && !r.failed(), "{r:?}");
        assert_eq!(r.attempts, 0);
    }
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|(p, _)| p == "/api/v1/query"),
        "skipped backends are not asked"
    );
    let mut rep = report();
    rep.verify = results;
    let verdict =
        crate::verdict::Verdict::decide(crate::verdict::RunEnd::Completed, &[], &rep.verify);
    verdict.apply(&mut rep);
    assert!(rep.passed, "skipped assertions do not fail the run");
    let summary = rep.summary();
    assert!(
        summary.contains(
            "PASSED: 0 threshold(s) and 1 assertion(s) held; 2 assertion(s) skipped, not checked"
        ),
        "{summary}"
    );
    assert!(summary.contains("– l  skipped"), "{summary}");
    let bad =
        Selection::from_lookup(&|k: &str| (k == BACKENDS_VAR).then(|| "graphite".to_string()));
    assert!(bad.unwrap_err().contains("graphite"));
}

#[tokio::test]
async fn a_backend_nobody_answers_for_fails_at_once_with_the_cause() {
    // A port nothing listens on (the listener is dropped), and a name that cannot resolve.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (url, cause) in [
        (format!("http://127.0.0.1:{port}"), "Connection refused"),
        ("http://no-such-host.invalid:9090".to_string(), "dns error"),
    ] {
        let mut v = verify_with(&url, vec![promql("p", "up", Expect::NonEmpty)]);
        v.prometheus_url = Some(url.clone());
        v.deadline = Duration::from_secs(120);
        let t0 = tokio::time::Instant::now();
        let r = &run_with(&v, &report(), &Clients::default()).await[0];
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "not retried until the deadline"
        );
        assert!(!r.passed && r.attempts == 1, "{r:?}");
        assert!(
            r.message.contains(cause),
            "the cause is named: {}",
            r.message
        );
    }
}
