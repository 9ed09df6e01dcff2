//! Every route in-process through `oneshot`: the CRUD cycle, list filters and paging, the
//! bounded store, health, readiness and the fault API's absence without a token.

use http::{Method, StatusCode};
use serde_json::json;

use crate::support::{test_app, test_config, with_config};

#[tokio::test]
async fn health_and_ready() {
    let app = test_app();
    let r = app.get("/health").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({ "status": "ok" }));
    let r = app.get("/ready").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({ "status": "ready" }));
}

#[tokio::test]
async fn crud_cycle_with_increasing_ids() {
    let app = test_app();
    let r = app
        .json(Method::POST, "/api/todos", r#"{"text":"  buy milk  "}"#)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("location"), Some("/api/todos/1"));
    let a = r.json();
    assert_eq!(a["id"], 1);
    assert_eq!(a["text"], "buy milk", "text is trimmed");
    assert_eq!(a["completed"], false);
    assert!(a["createdAt"].as_str().is_some_and(|t| t.ends_with('Z')));
    let b = app.create("walk").await;
    assert_eq!(b["id"], 2);

    let r = app.get("/api/todos/1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), a);

    let r = app
        .json(
            Method::PUT,
            "/api/todos/1",
            r#"{"text":"buy oat milk","completed":true}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["text"], "buy oat milk");
    assert_eq!(r.json()["completed"], true);
    let r = app
        .json(Method::PATCH, "/api/todos/2", r#"{"completed":true}"#)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json()["text"],
        "walk",
        "PATCH keeps the fields it does not name"
    );
    let r = app
        .json(Method::PATCH, "/api/todos/2", r#"{"completed":false}"#)
        .await;
    assert_eq!(r.json()["completed"], false);

    let r = app
        .call(
            crate::support::req(Method::DELETE, "/api/todos/1")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    app.get("/api/todos/1")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let r = app
        .call(
            crate::support::req(Method::DELETE, "/api/todos/1")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_error(StatusCode::NOT_FOUND, "not_found");
    app.json(Method::PUT, "/api/todos/1", r#"{"completed":true}"#)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    // Ids are never reused, even after a delete.
    assert_eq!(app.create("third").await["id"], 3);

    let m = app.metrics();
    let op = |o: &str| {
        crate::support::sample(
            &m,
            &format!("tp2devops_todo_operations_total{{operation=\"{o}\"}}"),
        )
    };
    assert_eq!(op("create"), Some(3.0));
    assert_eq!(op("read"), Some(1.0));
    assert_eq!(op("update"), Some(3.0));
    assert_eq!(op("delete"), Some(1.0));
    assert_eq!(
        crate::support::sample(&m, "tp2devops_todos_active"),
        Some(2.0)
    );
    assert_eq!(
        crate::support::sample(&m, "tp2devops_todos_completed"),
        Some(0.0)
    );
}

#[tokio::test]
async fn list_filters_and_pages() {
    let app = test_app();
    for i in 1..=5 {
        app.create(&format!("t{i}")).await;
    }
    app.json(Method::PATCH, "/api/todos/2", r#"{"completed":true}"#)
        .await;
    app.json(Method::PATCH, "/api/todos/4", r#"{"completed":true}"#)
        .await;

    let r = app.get("/api/todos").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-total-count"), Some("5"));
    let ids: Vec<u64> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);

    let r = app.get("/api/todos?completed=true").await;
    assert_eq!(r.header("x-total-count"), Some("2"));
    assert_eq!(
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [2, 4]
    );
    let r = app.get("/api/todos?completed=false&limit=2&offset=1").await;
    assert_eq!(r.header("x-total-count"), Some("3"));
    assert_eq!(
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [3, 5]
    );
    let r = app.get("/api/todos?offset=10").await;
    assert_eq!(r.json(), json!([]));

    let m = app.metrics();
    assert_eq!(
        crate::support::sample(&m, "tp2devops_todos_active"),
        Some(3.0)
    );
    assert_eq!(
        crate::support::sample(&m, "tp2devops_todos_completed"),
        Some(2.0)
    );
    assert_eq!(
        crate::support::sample(&m, r#"tp2devops_todo_operations_total{operation="list"}"#),
        Some(4.0)
    );
}

#[tokio::test]
async fn full_store_refuses_creates_and_nothing_else_breaks() {
    let (mut config, lines) = test_config();
    config.max_todos = 2;
    let app = with_config(config, lines);
    app.create("a").await;
    app.create("b").await;
    let r = app
        .json(Method::POST, "/api/todos", r#"{"text":"c"}"#)
        .await;
    r.assert_error(StatusCode::INSUFFICIENT_STORAGE, "store_full");
    assert_eq!(
        app.get("/api/todos").await.json().as_array().unwrap().len(),
        2
    );
    assert_eq!(app.get("/api/todos/2").await.status, StatusCode::OK);
    let r = app
        .call(
            crate::support::req(Method::DELETE, "/api/todos/1")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.create("c").await["id"], 3, "room again after a delete");
}

#[tokio::test]
async fn fault_api_does_not_exist_without_a_token() {
    let (mut config, lines) = test_config();
    config.fault_token = None;
    let app = with_config(config, lines);
    let r = app
        .call(
            crate::support::req(Method::GET, "/admin/faults")
                .header("authorization", "Bearer x")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_error(StatusCode::NOT_FOUND, "not_found");
    let r = app
        .json(
            Method::POST,
            "/admin/faults",
            r#"{"kind":"error","status":500,"duration_s":5}"#,
        )
        .await;
    r.assert_error(StatusCode::NOT_FOUND, "not_found");
}

/// Nothing is process-global: two instances in one process keep their own store, metrics and
/// fault rules (the generator embeds the app next to its own telemetry).
#[tokio::test]
async fn instances_share_nothing() {
    let a = test_app();
    let b = test_app();
    a.create("only in a").await;
    assert_eq!(b.get("/api/todos").await.header("x-total-count"), Some("0"));
    assert_eq!(
        crate::support::sample(
            &b.metrics(),
            r#"tp2devops_todo_operations_total{operation="create"}"#
        ),
        None
    );
    assert_eq!(
        crate::support::sample(
            &a.metrics(),
            r#"tp2devops_todo_operations_total{operation="create"}"#
        ),
        Some(1.0)
    );
    assert_eq!(b.create("b").await["id"], 1, "ids are per instance");
    assert!(b.log_lines().iter().all(|l| l["text"] != "only in a"));
}
