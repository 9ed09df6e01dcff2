//! Every kind of bad input gets its 4xx and the one JSON error shape, never a 500 or plain text.

use axum::body::Body;
use http::{Method, StatusCode};

use crate::support::{req, test_app};

#[tokio::test]
async fn malformed_json_is_400() {
    let app = test_app();
    for body in [r#"{"text":"#, "not json", r#"{"text":"a",}"#, ""] {
        app.json(Method::POST, "/api/todos", body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    }
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_415() {
    let app = test_app();
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut b = req(Method::POST, "/api/todos");
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        let r = app
            .call(b.body(Body::from(r#"{"text":"a"}"#)).unwrap())
            .await;
        r.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    }
    let r = app
        .call(
            req(Method::PUT, "/api/todos/1")
                .header("content-type", "text/plain")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    r.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
}

#[tokio::test]
async fn unknown_fields_and_wrong_types_are_400() {
    let app = test_app();
    for body in [
        r#"{"text":"a","priority":1}"#,
        r#"{"title":"a"}"#,
        r#"{"text":5}"#,
        r#"{"text":null}"#,
        "[]",
        r#"{}"#,
    ] {
        app.json(Method::POST, "/api/todos", body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "validation_error");
    }
    app.create("x").await;
    for body in [r#"{"done":true}"#, r#"{"completed":"yes"}"#, r#"{}"#] {
        app.json(Method::PATCH, "/api/todos/1", body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "validation_error");
    }
}

#[tokio::test]
async fn empty_or_over_long_text_is_400() {
    let app = test_app();
    for text in ["", "   ", "\n\t"] {
        let body = serde_json::json!({ "text": text }).to_string();
        app.json(Method::POST, "/api/todos", &body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "validation_error");
    }
    let at_limit = "é".repeat(500);
    assert_eq!(
        app.create(&at_limit).await["text"],
        at_limit.as_str(),
        "500 characters (1000 bytes) are fine"
    );
    let over = serde_json::json!({ "text": "a".repeat(501) }).to_string();
    app.json(Method::POST, "/api/todos", &over)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "validation_error");
    app.json(Method::PUT, "/api/todos/1", &over)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "validation_error");
    app.json(Method::PUT, "/api/todos/1", r#"{"text":" "}"#)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "validation_error");
    assert_eq!(
        app.get("/api/todos").await.header("x-total-count"),
        Some("1"),
        "nothing stored by refused requests"
    );
}

#[tokio::test]
async fn non_numeric_id_is_400() {
    let app = test_app();
    for id in ["abc", "-1", "1.5", "99999999999999999999999", "%20"] {
        app.get(&format!("/api/todos/{id}"))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_id");
        let r = app
            .call(
                req(Method::DELETE, &format!("/api/todos/{id}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_id");
        app.json(
            Method::PUT,
            &format!("/api/todos/{id}"),
            r#"{"completed":true}"#,
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_id");
    }
}

#[tokio::test]
async fn bad_query_is_400() {
    let app = test_app();
    for q in [
        "completed=maybe",
        "limit=0",
        "limit=100000",
        "limit=-3",
        "offset=x",
        "sort=id",
    ] {
        app.get(&format!("/api/todos?{q}")).await.assert_error(
            StatusCode::BAD_REQUEST,
            if q.starts_with("limit=0") || q == "limit=100000" {
                "validation_error"
            } else {
                "invalid_query"
            },
        );
    }
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = test_app();
    let big = serde_json::json!({ "text": "a".repeat(20 * 1024) }).to_string();
    app.json(Method::POST, "/api/todos", &big)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    app.json(Method::PUT, "/api/todos/1", &big)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn unknown_route_is_404_and_wrong_method_is_405() {
    let app = test_app();
    for path in ["/", "/api", "/api/todo", "/api/todos/1/extra", "/metrics/x"] {
        app.get(path)
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    for (m, path) in [
        (Method::DELETE, "/api/todos"),
        (Method::PUT, "/api/todos"),
        (Method::POST, "/api/todos/1"),
        (Method::POST, "/health"),
        (Method::DELETE, "/metrics"),
    ] {
        let r = app
            .call(
                req(m.clone(), path)
                    .header("content-type", "application/json")
                    .body(Body::from("{}"))
                    .unwrap(),
            )
            .await;
        r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        let allow = r
            .header("allow")
            .unwrap_or_else(|| panic!("405 without Allow for {m} {path}"));
        assert!(allow.contains("GET"), "{path}: {allow}");
    }
    // Made-up methods share one label value too.
    let r = app
        .call(
            req(Method::from_bytes(b"BREW").unwrap(), "/api/todos")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert!(app.metrics().contains(r#"tp2devops_http_requests_total{method="_OTHER",route="/api/todos",status_code="405"} 1"#), "{}", app.metrics());
    // Unmatched paths share one label value: raw paths must not grow the series set.
    let m = app.metrics();
    assert_eq!(
        crate::support::sample(
            &m,
            r#"tp2devops_http_requests_total{method="GET",route="unmatched",status_code="404"}"#
        ),
        Some(5.0),
        "{m}"
    );
    assert!(!m.contains("/api/todo\""), "{m}");
}

/// One table of every bad request above: none may get a 5xx.
#[tokio::test]
async fn no_bad_input_gets_a_server_error() {
    let app = test_app();
    let cases: Vec<(Method, &str, Option<&str>, String)> = vec![
        (
            Method::POST,
            "/api/todos",
            Some("application/json"),
            "{".into(),
        ),
        (
            Method::POST,
            "/api/todos",
            Some("application/json"),
            "\u{0}".into(),
        ),
        (
            Method::POST,
            "/api/todos",
            Some("application/json"),
            "\"\\ud800\"".into(),
        ),
        (
            Method::POST,
            "/api/todos",
            Some("application/json"),
            format!("{}1{}", "[".repeat(200), "]".repeat(200)),
        ),
        (Method::POST, "/api/todos", Some("text/json"), "{}".into()),
        (
            Method::PATCH,
            "/api/todos/18446744073709551615",
            Some("application/json"),
            r#"{"completed":true}"#.into(),
        ),
        (Method::GET, "/api/todos/0", None, String::new()),
        (
            Method::GET,
            "/api/todos?limit=1&limit=2",
            None,
            String::new(),
        ),
    ];
    for (m, uri, ct, body) in cases {
        let mut b = req(m.clone(), uri);
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        let r = app.call(b.body(Body::from(body.clone())).unwrap()).await;
        assert!(
            r.status.is_client_error(),
            "{m} {uri} {body:?} → {} {}",
            r.status,
            r.text()
        );
        let v = r.json();
        assert!(v["error"].is_string() && v["message"].is_string(), "{v}");
    }
}
