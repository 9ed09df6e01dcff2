//! Fault injection: the per-request headers (honoured only when enabled), the `/admin/faults`
//! API (token, validation, listing, removal) and its time-boxed rules, which expire by
//! themselves (checked on a paused tokio clock, so no test waits on wall time).

use std::time::Duration;

use axum::body::Body;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, req, sample, test_app, test_config, with_config};

const TOKEN: &str = "Bearer secret-token";

async fn admin(
    app: &TestApp,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> crate::support::Resp {
    let mut b = req(method, uri).header("authorization", TOKEN);
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    app.call(
        b.body(body.map_or_else(Body::empty, |v| Body::from(v.to_string())))
            .unwrap(),
    )
    .await
}

fn bucket(app: &TestApp, labels: &str, le: &str) -> f64 {
    sample(
        &app.metrics(),
        &format!("tp2devops_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}}"),
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn fault_headers_are_ignored_unless_enabled() {
    let (mut config, lines) = test_config();
    config.faults_enabled = false;
    let app = with_config(config, lines);
    let r = app
        .call(
            req(Method::POST, "/api/todos")
                .header("content-type", "application/json")
                .header("x-fault-status", "503")
                .body(Body::from(r#"{"text":"a"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(!app.metrics().contains("tp2devops_faults_injected_total{"));
}

#[tokio::test]
async fn status_header_fails_after_validation_and_is_counted() {
    let app = test_app();
    let post = |body: &'static str| {
        req(Method::POST, "/api/todos")
            .header("content-type", "application/json")
            .header("x-fault-status", "503")
            .body(Body::from(body))
            .unwrap()
    };
    let r = app.call(post(r#"{"text":"a"}"#)).await;
    r.assert_error(StatusCode::SERVICE_UNAVAILABLE, "fault_injected");
    assert_eq!(
        app.get("/api/todos").await.header("x-total-count"),
        Some("0"),
        "a failed create stores nothing"
    );
    // Validation runs first: bad input is still a 400, and no fault is counted for it.
    app.call(post(r#"{"text":""}"#))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "validation_error");
    let m = app.metrics();
    assert_eq!(
        sample(
            &m,
            r#"tp2devops_faults_injected_total{route="/api/todos",kind="error"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"tp2devops_http_requests_total{method="POST",route="/api/todos",status_code="503"}"#
        ),
        Some(1.0)
    );
    // Invalid fault headers are ignored, never an error of their own.
    for (h, v) in [
        ("x-fault-status", "200"),
        ("x-fault-status", "abc"),
        ("x-fault-delay", "-5"),
        ("x-fault-delay", "soon"),
    ] {
        let r = app
            .call(
                req(Method::GET, "/api/todos")
                    .header(h, v)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{h}: {v}");
    }
    // Only /api routes are faulted: health and metrics stay truthful.
    let r = app
        .call(
            req(Method::GET, "/health")
                .header("x-fault-status", "500")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn delay_header_slows_the_request_by_that_much() {
    let app = test_app();
    let labels = r#"method="POST",route="/api/todos",status_code="201""#;
    let r = app
        .call(
            req(Method::POST, "/api/todos")
                .header("content-type", "application/json")
                .header("x-fault-delay", "200")
                .header("x-fault-span", "todo_creation")
                .body(Body::from(r#"{"text":"slow"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // On the paused clock the handler's sleep advances time by exactly 200 ms.
    assert_eq!(bucket(&app, labels, "0.1"), 0.0);
    assert_eq!(bucket(&app, labels, "0.25"), 1.0);
    assert_eq!(
        sample(
            &app.metrics(),
            r#"tp2devops_faults_injected_total{route="/api/todos",kind="latency"}"#
        ),
        Some(1.0)
    );
    let access = app
        .log_lines()
        .into_iter()
        .find(|l| l["msg"] == "request completed")
        .unwrap();
    assert!(access["duration"].as_f64().unwrap() >= 200.0, "{access}");
}

#[tokio::test]
async fn admin_api_needs_the_token() {
    let app = test_app();
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("secret-token"),
        Some("Basic c2VjcmV0LXRva2Vu"),
    ] {
        let mut b = req(Method::GET, "/admin/faults");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        app.call(b.body(Body::empty()).unwrap())
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let r = app
        .call(
            req(Method::POST, "/admin/faults")
                .header("content-type", "application/json")
                .body(Body::from(
                    r#"{"kind":"error","status":500,"duration_s":5}"#,
                ))
                .unwrap(),
        )
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        admin(&app, Method::GET, "/admin/faults", None)
            .await
            .json()
            .as_array()
            .unwrap()
            .is_empty(),
        "the refused rule was not added"
    );
}

#[tokio::test]
async fn admin_api_validates_rules() {
    let app = test_app();
    for bad in [
        json!({"kind":"latency","duration_s":5}),
        json!({"kind":"latency","delay_ms":0,"duration_s":5}),
        json!({"kind":"error","status":200,"duration_s":5}),
        json!({"kind":"error","status":500,"share":0,"duration_s":5}),
        json!({"kind":"error","status":500,"duration_s":0}),
        json!({"kind":"error","status":500,"duration_s":5,"color":"red"}),
        json!({"kind":"explode","duration_s":5}),
        json!({"kind":"error","status":500}),
    ] {
        let r = admin(&app, Method::POST, "/admin/faults", Some(bad.clone())).await;
        r.assert_error(StatusCode::BAD_REQUEST, "validation_error");
    }
    admin(&app, Method::DELETE, "/admin/faults/nope", None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(start_paused = true)]
async fn rules_apply_to_their_route_and_method_then_expire() {
    let app = test_app();
    let spec = json!({"route":"/api/todos","method":"POST","kind":"error","delay_ms":null,"jitter_ms":0,"span":null,"status":502,"share":1.0,"duration_s":30});
    let r = admin(&app, Method::POST, "/admin/faults", Some(spec)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let rule = r.json();
    let id = rule["id"].as_str().unwrap().to_string();
    assert!(
        rule["expires_at"].as_str().is_some_and(|t| t.contains('T')),
        "{rule}"
    );
    assert_eq!(rule["route"], "/api/todos");
    assert_eq!(rule["status"], 502);
    let listed = admin(&app, Method::GET, "/admin/faults", None).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());

    app.json(Method::POST, "/api/todos", r#"{"text":"a"}"#)
        .await
        .assert_error(StatusCode::BAD_GATEWAY, "fault_injected");
    assert_eq!(
        app.get("/api/todos").await.status,
        StatusCode::OK,
        "other methods are untouched"
    );
    assert_eq!(
        app.get("/api/todos/1").await.status,
        StatusCode::NOT_FOUND,
        "other routes are untouched"
    );

    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(
        app.json(Method::POST, "/api/todos", r#"{"text":"a"}"#)
            .await
            .status,
        StatusCode::CREATED,
        "the rule expired by itself"
    );
    assert!(
        admin(&app, Method::GET, "/admin/faults", None)
            .await
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );
    admin(&app, Method::DELETE, &format!("/admin/faults/{id}"), None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(start_paused = true)]
async fn latency_rule_with_jitter_on_any_route() {
    let app = test_app();
    let r = admin(
        &app,
        Method::POST,
        "/admin/faults",
        Some(json!({"kind":"latency","delay_ms":300,"jitter_ms":100,"duration_s":60})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["route"], Value::Null);
    for _ in 0..5 {
        assert_eq!(app.get("/api/todos").await.status, StatusCode::OK);
    }
    let labels = r#"method="GET",route="/api/todos",status_code="200""#;
    // 300..=400 ms each, on the paused clock.
    assert_eq!(bucket(&app, labels, "0.25"), 0.0);
    assert_eq!(bucket(&app, labels, "0.5"), 5.0);
    assert_eq!(
        sample(
            &app.metrics(),
            r#"tp2devops_faults_injected_total{route="/api/todos",kind="latency"}"#
        ),
        Some(5.0)
    );
    assert_eq!(app.get("/health").await.status, StatusCode::OK);
}

#[tokio::test]
async fn share_faults_a_part_of_the_requests() {
    let app = test_app();
    let r = admin(
        &app,
        Method::POST,
        "/admin/faults",
        Some(json!({"route":"/api/todos","kind":"error","status":500,"share":0.5,"duration_s":60})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let mut failed = 0;
    for _ in 0..400 {
        if app.get("/api/todos").await.status == StatusCode::INTERNAL_SERVER_ERROR {
            failed += 1;
        }
    }
    // Binomial(400, 0.5): outside 120..=280 has probability below 1e-15.
    assert!((120..=280).contains(&failed), "{failed} of 400 failed");
}

#[tokio::test]
async fn delete_one_and_clear_all() {
    let app = test_app();
    let mut ids = Vec::new();
    for status in [500, 503, 504] {
        let r = admin(
            &app,
            Method::POST,
            "/admin/faults",
            Some(json!({"route":"/api/todos/:id","kind":"error","status":status,"duration_s":60})),
        )
        .await;
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let r = admin(
        &app,
        Method::DELETE,
        &format!("/admin/faults/{}", ids[0]),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // The first remaining rule now decides.
    app.get("/api/todos/1")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "fault_injected");
    let r = admin(&app, Method::DELETE, "/admin/faults", None).await;
    assert_eq!(r.json(), json!({ "removed": 2 }));
    app.get("/api/todos/1")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

/// The `message` of a 400 `validation_error` for `spec`.
async fn refused(app: &TestApp, spec: Value) -> String {
    let r = admin(app, Method::POST, "/admin/faults", Some(spec.clone())).await;
    r.assert_error(StatusCode::BAD_REQUEST, "validation_error");
    r.json()["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn unknown_route_method_span_or_field_is_refused_with_the_valid_values() {
    let app = test_app();
    let m = refused(
        &app,
        json!({"route":"/api/todoz","kind":"error","status":500,"duration_s":5}),
    )
    .await;
    assert!(
        m.contains("/api/todoz") && m.contains("/api/todos, /api/todos/:id"),
        "{m}"
    );
    let m = refused(
        &app,
        json!({"route":"/api/todos/:id","method":"POST","kind":"error","status":500,"duration_s":5}),
    )
    .await;
    assert!(m.contains("GET, PUT, PATCH, DELETE"), "{m}");
    let m = refused(
        &app,
        json!({"method":"FETCH","kind":"error","status":500,"duration_s":5}),
    )
    .await;
    assert!(m.contains("GET, POST, PUT, PATCH, DELETE"), "{m}");
    let m = refused(
        &app,
        json!({"route":"/api/todos","method":"POST","kind":"latency","delay_ms":10,"span":"todo_creaton","duration_s":5}),
    )
    .await;
    assert!(
        m.contains("todo_creaton")
            && m.contains("create_todo, metrics_update, todo_creation, validation"),
        "{m}"
    );
    let m = refused(
        &app,
        json!({"kind":"error","status":500,"duration_s":5,"colour":"red"}),
    )
    .await;
    assert!(m.contains("colour") && m.contains("jitter_ms"), "{m}");
    // Bounded delay and jitter: together at most 60 s.
    let m = refused(
        &app,
        json!({"kind":"latency","delay_ms":50000,"jitter_ms":20000,"duration_s":5}),
    )
    .await;
    assert!(m.contains("60000") && m.contains("70000"), "{m}");
    // A span of the right operation is accepted.
    let r = admin(
        &app,
        Method::POST,
        "/admin/faults",
        Some(json!({"route":"/api/todos","method":"post","kind":"latency","delay_ms":10,"span":"todo_creation","duration_s":5})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

#[tokio::test]
async fn live_rules_are_bounded() {
    let app = test_app();
    let rule =
        json!({"route":"/api/todos","kind":"error","status":500,"share":0.01,"duration_s":60});
    for _ in 0..todo_api::faults::MAX_RULES {
        let r = admin(&app, Method::POST, "/admin/faults", Some(rule.clone())).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let r = admin(&app, Method::POST, "/admin/faults", Some(rule.clone())).await;
    r.assert_error(StatusCode::CONFLICT, "too_many_rules");
    assert!(r.text().contains("100"), "{}", r.text());
    // Room again once one is gone.
    let id = admin(&app, Method::GET, "/admin/faults", None).await.json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin(&app, Method::DELETE, &format!("/admin/faults/{id}"), None).await;
    let r = admin(&app, Method::POST, "/admin/faults", Some(rule)).await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = test_app();
    for auth in [
        "bearer secret-token",
        "BEARER secret-token",
        "Bearer  secret-token",
    ] {
        let r = app
            .call(
                req(Method::GET, "/admin/faults")
                    .header("authorization", auth)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{auth}");
    }
    for auth in ["bearer secret-tokenx", "bearersecret-token", "Bearer"] {
        app.call(
            req(Method::GET, "/admin/faults")
                .header("authorization", auth)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
}

#[tokio::test(start_paused = true)]
async fn delay_ms_on_an_error_rule_delays_the_error() {
    let app = test_app();
    let r = admin(
        &app,
        Method::POST,
        "/admin/faults",
        Some(json!({"route":"/api/todos","method":"GET","kind":"error","status":503,"delay_ms":300,"duration_s":60})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    app.get("/api/todos")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "fault_injected");
    let labels = r#"method="GET",route="/api/todos",status_code="503""#;
    assert_eq!(bucket(&app, labels, "0.25"), 0.0);
    assert_eq!(bucket(&app, labels, "0.5"), 1.0);
}

#[tokio::test]
async fn an_unknown_fault_span_header_is_refused_with_the_valid_spans() {
    let app = test_app();
    let r = app
        .call(
            req(Method::POST, "/api/todos")
                .header("content-type", "application/json")
                .header("x-fault-delay", "10")
                .header("x-fault-span", "todo_creaton")
                .body(Body::from(r#"{"text":"a"}"#))
                .unwrap(),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_fault");
    let m = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        m.contains("create_todo, validation, todo_creation, metrics_update"),
        "{m}"
    );
    assert_eq!(
        app.get("/api/todos").await.header("x-total-count"),
        Some("0"),
        "nothing was created"
    );
    // A span of another operation is just as wrong.
    let r = app
        .call(
            req(Method::GET, "/api/todos")
                .header("x-fault-delay", "10")
                .header("x-fault-span", "validation")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_fault");
}
