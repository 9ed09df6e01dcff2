//! The Pino-style log lines: exact field names, order and JSON types of the seed's lines and of
//! the access line, levels by status, and the caller's trace id carried into them.

use axum::body::Body;
use http::{Method, StatusCode};
use serde_json::Value;

use crate::support::{is_hex, req, test_app, test_config, with_config};

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn assert_iso_time(v: &Value) {
    let t = v["time"]
        .as_str()
        .unwrap_or_else(|| panic!("time is a string: {v}"));
    // 2025-10-19T16:30:00.000Z
    let b = t.as_bytes();
    assert_eq!(b.len(), 24, "{t}");
    assert!(
        b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && b[19] == b'.'
            && b[23] == b'Z',
        "{t}"
    );
    assert!(
        t.bytes()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19, 23].contains(&i) || c.is_ascii_digit()),
        "{t}"
    );
}

#[tokio::test]
async fn todo_created_and_access_lines_have_the_exact_fields() {
    let app = test_app();
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = app
        .call(
            req(Method::POST, "/api/todos")
                .header("content-type", "application/json")
                .header("traceparent", tp)
                .body(Body::from(r#"{"text":"Example"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let lines = app.log_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");

    let created = &lines[0];
    assert_eq!(
        keys(created),
        [
            "level", "time", "msg", "todoId", "text", "traceId", "spanId"
        ],
        "{created}"
    );
    assert_eq!(created["level"], "INFO");
    assert_iso_time(created);
    assert_eq!(created["msg"], "Todo created");
    assert_eq!(created["todoId"], 1, "todoId is a number");
    assert!(created["todoId"].is_u64());
    assert_eq!(created["text"], "Example");
    assert_eq!(
        created["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "the caller's trace id is kept"
    );
    let span_id = created["spanId"].as_str().unwrap();
    assert!(is_hex(span_id, 16), "{span_id}");
    assert_ne!(
        span_id, "00f067aa0ba902b7",
        "the server span is a new child of the caller's span"
    );

    let access = &lines[1];
    assert_eq!(
        keys(access),
        [
            "level", "time", "msg", "method", "route", "status", "duration", "traceId", "spanId"
        ],
        "{access}"
    );
    assert_eq!(access["level"], "INFO");
    assert_iso_time(access);
    assert_eq!(access["msg"], "request completed");
    assert_eq!(access["method"], "POST");
    assert_eq!(access["route"], "/api/todos");
    assert_eq!(access["status"], 201);
    assert!(access["status"].is_u64());
    assert!(
        access["duration"].is_number() && access["duration"].as_f64().unwrap() >= 0.0,
        "duration is a number of ms: {access}"
    );
    assert_eq!(access["traceId"], created["traceId"]);
    assert_eq!(access["spanId"], created["spanId"]);
}

#[tokio::test]
async fn every_request_logs_one_access_line_with_level_by_status() {
    let app = test_app();
    app.create("a").await;
    app.get("/api/todos/1").await;
    app.get("/api/todos/abc").await;
    app.get("/nowhere").await;
    app.json(Method::PATCH, "/api/todos/1", r#"{"completed":true}"#)
        .await;
    app.call(
        req(Method::DELETE, "/api/todos/1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    app.call(
        req(Method::GET, "/api/todos")
            .header("x-fault-status", "500")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    app.get("/health").await;
    let lines = app.log_lines();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["msg"] == "request completed")
        .collect();
    let got: Vec<(&str, &str, u64, &str)> = access
        .iter()
        .map(|l| {
            (
                l["method"].as_str().unwrap(),
                l["route"].as_str().unwrap(),
                l["status"].as_u64().unwrap(),
                l["level"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("POST", "/api/todos", 201, "INFO"),
            ("GET", "/api/todos/:id", 200, "INFO"),
            ("GET", "/api/todos/:id", 400, "WARN"),
            ("GET", "unmatched", 404, "WARN"),
            ("PATCH", "/api/todos/:id", 200, "INFO"),
            ("DELETE", "/api/todos/:id", 204, "INFO"),
            ("GET", "/api/todos", 500, "ERROR"),
            ("GET", "/health", 200, "INFO"),
        ]
    );
    // Fresh trace ids when no traceparent came: valid and distinct per request.
    let mut ids: Vec<&str> = access
        .iter()
        .map(|l| l["traceId"].as_str().unwrap())
        .collect();
    assert!(
        ids.iter().all(|i| is_hex(i, 32) && *i != "0".repeat(32)),
        "{ids:?}"
    );
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), access.len());
    let msgs: Vec<&str> = lines
        .iter()
        .map(|l| l["msg"].as_str().unwrap())
        .filter(|m| *m != "request completed")
        .collect();
    // Each failed todo request also has its error line, before its access line.
    assert_eq!(
        msgs,
        [
            "Todo created",
            "Todo fetched",
            "Invalid todo id",
            "Todo updated",
            "Todo deleted",
            "Injected fault"
        ]
    );
    for l in lines
        .iter()
        .filter(|l| l["msg"].as_str().unwrap().starts_with("Todo "))
    {
        assert!(
            l["todoId"].is_u64()
                && l["text"].is_string()
                && l["traceId"].is_string()
                && l["spanId"].is_string(),
            "{l}"
        );
    }
}

#[tokio::test]
async fn log_off_writes_nothing() {
    let (mut config, lines) = test_config();
    config.log = todo_api::LogOutput::Off;
    let app = with_config(config, lines);
    app.create("quiet").await;
    assert!(app.log_lines().is_empty());
}
