//! `/metrics`: the six series of DESIGN.md with their exact names, labels and buckets, the
//! content negotiation (classic text vs OpenMetrics with `trace_id` exemplars), and the classic
//! text passing the real `promtool check metrics`.

use std::io::Write as _;
use std::process::{Command, Stdio};

use axum::body::Body;
use http::{Method, StatusCode};

use crate::support::{find_bin, is_hex, req, sample, test_app};

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

async fn traffic(app: &crate::support::TestApp) {
    app.create("a").await;
    let r = app
        .call(
            req(Method::POST, "/api/todos")
                .header("content-type", "application/json")
                .header("traceparent", TRACEPARENT)
                .body(Body::from(r#"{"text":"b"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    app.get("/api/todos").await;
    app.get("/api/todos/1").await;
    app.get("/api/todos/77").await;
    app.json(Method::PATCH, "/api/todos/1", r#"{"completed":true}"#)
        .await;
    app.call(
        req(Method::DELETE, "/api/todos/2")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let r = app
        .call(
            req(Method::GET, "/api/todos")
                .header("x-fault-status", "503")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn classic_text_has_the_six_series_and_exact_content_type() {
    let app = test_app();
    traffic(&app).await;
    let r = app.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let m = r.text();
    for (name, kind) in [
        ("tp2devops_http_requests_total", "counter"),
        ("tp2devops_http_request_duration_seconds", "histogram"),
        ("tp2devops_todo_operations_total", "counter"),
        ("tp2devops_todos_active", "gauge"),
        ("tp2devops_todos_completed", "gauge"),
        ("tp2devops_faults_injected_total", "counter"),
    ] {
        assert!(
            m.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} {kind} missing:\n{m}"
        );
    }
    // The route label is the template, and the label names are the seed's.
    assert_eq!(
        sample(
            &m,
            r#"tp2devops_http_requests_total{method="GET",route="/api/todos/:id",status_code="200"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"tp2devops_http_requests_total{method="GET",route="/api/todos/:id",status_code="404"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"tp2devops_http_requests_total{method="POST",route="/api/todos",status_code="201"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"tp2devops_http_requests_total{method="GET",route="/api/todos",status_code="503"}"#
        ),
        Some(1.0)
    );
    assert!(
        !m.contains("/api/todos/1\""),
        "raw path leaked into a label:\n{m}"
    );
    // Exactly the seed's buckets, cumulative, ending in +Inf = _count.
    let labels = r#"method="POST",route="/api/todos",status_code="201""#;
    let les: Vec<&str> = m
        .lines()
        .filter(|l| {
            l.starts_with(&format!(
                "tp2devops_http_request_duration_seconds_bucket{{{labels},"
            ))
        })
        .map(|l| l.split("le=\"").nth(1).unwrap().split('"').next().unwrap())
        .collect();
    assert_eq!(
        les,
        [
            "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"
        ]
    );
    assert_eq!(
        sample(
            &m,
            &format!("tp2devops_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}}")
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &m,
            &format!("tp2devops_http_request_duration_seconds_count{{{labels}}}")
        ),
        Some(2.0)
    );
    assert!(
        sample(
            &m,
            &format!("tp2devops_http_request_duration_seconds_sum{{{labels}}}")
        )
        .is_some()
    );
    assert_eq!(
        sample(
            &m,
            r#"tp2devops_faults_injected_total{route="/api/todos",kind="error"}"#
        ),
        Some(1.0)
    );
    assert_eq!(sample(&m, "tp2devops_todos_active"), Some(0.0));
    assert_eq!(sample(&m, "tp2devops_todos_completed"), Some(1.0));
    assert!(
        !m.contains("trace_id"),
        "no exemplars in the classic format"
    );
    assert!(!m.contains("# EOF"));
}

#[tokio::test]
async fn openmetrics_when_asked_with_trace_id_exemplars() {
    let app = test_app();
    traffic(&app).await;
    let accept =
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1";
    let r = app
        .call(
            req(Method::GET, "/metrics")
                .header("accept", accept)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let m = r.text();
    assert!(m.ends_with("# EOF\n"));
    assert!(
        m.contains("# TYPE tp2devops_http_requests counter\n"),
        "OpenMetrics names counter families without _total"
    );
    assert!(m.contains("# TYPE tp2devops_http_request_duration_seconds histogram\n"));
    // The request that came with a traceparent left its trace id on a duration bucket.
    let tid = TRACEPARENT.split('-').nth(1).unwrap();
    assert!(
        m.lines().any(|l| l.starts_with(
            r#"tp2devops_http_request_duration_seconds_bucket{method="POST",route="/api/todos""#
        ) && l.contains(&format!("# {{trace_id=\"{tid}\"}}"))),
        "{m}"
    );
    // Every exemplar has a well-formed trace id (fresh ids when no traceparent came).
    let ids: Vec<&str> = m
        .lines()
        .filter_map(|l| l.split("# {trace_id=\"").nth(1))
        .map(|r| r.split('"').next().unwrap())
        .collect();
    assert!(ids.len() >= 8, "{m}");
    assert!(
        ids.iter()
            .all(|i| is_hex(i, 32) && *i != "00000000000000000000000000000000"),
        "{ids:?}"
    );
    // Plain text is still the answer to a scraper that does not ask.
    let r = app
        .call(
            req(Method::GET, "/metrics")
                .header("accept", "text/plain")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
}

#[tokio::test]
async fn promtool_check_metrics_accepts_the_text() {
    let promtool = find_bin("PROMTOOL_BIN", &["promtool"]);
    let app = test_app();
    traffic(&app).await;
    let text = app.get("/metrics").await.text();
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}\n--- input ---\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn series_exist_at_zero_from_the_first_scrape_where_their_labels_are_known() {
    let app = test_app();
    let m = app.get("/metrics").await.text();
    for series in [
        r#"tp2devops_faults_injected_total{route="/api/todos",kind="latency"}"#,
        r#"tp2devops_faults_injected_total{route="/api/todos",kind="error"}"#,
        r#"tp2devops_faults_injected_total{route="/api/todos/:id",kind="latency"}"#,
        r#"tp2devops_faults_injected_total{route="/api/todos/:id",kind="error"}"#,
        r#"tp2devops_http_requests_total{method="POST",route="/api/todos",status_code="201"}"#,
        r#"tp2devops_http_requests_total{method="GET",route="/api/todos",status_code="200"}"#,
        r#"tp2devops_http_requests_total{method="GET",route="/api/todos/:id",status_code="200"}"#,
        r#"tp2devops_http_requests_total{method="PUT",route="/api/todos/:id",status_code="200"}"#,
        r#"tp2devops_http_requests_total{method="PATCH",route="/api/todos/:id",status_code="200"}"#,
        r#"tp2devops_http_requests_total{method="DELETE",route="/api/todos/:id",status_code="204"}"#,
        r#"tp2devops_http_request_duration_seconds_count{method="POST",route="/api/todos",status_code="201"}"#,
        "tp2devops_log_lines_dropped_total",
    ] {
        assert_eq!(sample(&m, series), Some(0.0), "{series} in\n{m}");
    }
    // An error rule makes its status's series exist before its first request.
    let r = app
        .call(
            req(Method::POST, "/admin/faults")
                .header("authorization", "Bearer secret-token")
                .header("content-type", "application/json")
                .body(Body::from(
                    r#"{"route":"/api/todos/:id","method":"DELETE","kind":"error","status":503,"share":0.5,"duration_s":60}"#,
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let m = app.metrics();
    assert_eq!(
        sample(
            &m,
            r#"tp2devops_http_requests_total{method="DELETE",route="/api/todos/:id",status_code="503"}"#
        ),
        Some(0.0),
        "{m}"
    );
    assert!(
        !m.contains(r#"method="GET",route="/api/todos/:id",status_code="503""#),
        "only the rule's method: {m}"
    );
}
