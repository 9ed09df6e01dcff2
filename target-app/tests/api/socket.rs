//! The app over a real socket on 127.0.0.1:0 (`serve`): every route and the bad inputs once
//! through hyper's real HTTP/1.1 stack, then the graceful shutdown (in-flight requests finish,
//! and a stuck one cannot hold the server past `shutdown_grace`).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{poll, sample, serve, test_config};

async fn error_code(r: reqwest::Response) -> (StatusCode, String) {
    let status = r.status();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].is_string(), "{v}");
    (status, v["error"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn every_route_and_bad_input_over_a_socket() {
    let (config, lines) = test_config();
    let mut app = serve(config, lines).await;
    let c = reqwest::Client::new();
    let base = app.url("");
    let url = |p: &str| format!("{base}{p}");

    assert_eq!(
        c.get(url("/health")).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        c.get(url("/ready")).send().await.unwrap().status(),
        StatusCode::OK
    );
    let r = c
        .post(url("/api/todos"))
        .json(&serde_json::json!({"text":"over the wire"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let todo: Value = r.json().await.unwrap();
    let id = todo["id"].as_u64().unwrap();
    let r = c
        .get(url(&format!("/api/todos/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["text"], "over the wire");
    let r = c
        .put(url(&format!("/api/todos/{id}")))
        .json(&serde_json::json!({"completed":true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["completed"], true);
    let r = c
        .patch(url(&format!("/api/todos/{id}")))
        .json(&serde_json::json!({"text":"renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["text"], "renamed");
    let r = c
        .get(url("/api/todos?completed=true&limit=10"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-total-count"], "1");
    assert_eq!(
        c.delete(url(&format!("/api/todos/{id}")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );

    let json_post = |body: String| {
        c.post(url("/api/todos"))
            .header("content-type", "application/json")
            .body(body)
    };
    assert_eq!(
        error_code(json_post("{".into()).send().await.unwrap()).await,
        (StatusCode::BAD_REQUEST, "invalid_json".into())
    );
    assert_eq!(
        error_code(
            json_post(r#"{"text":"a","x":1}"#.into())
                .send()
                .await
                .unwrap()
        )
        .await,
        (StatusCode::BAD_REQUEST, "validation_error".into())
    );
    assert_eq!(
        error_code(json_post(r#"{"text":""}"#.into()).send().await.unwrap()).await,
        (StatusCode::BAD_REQUEST, "validation_error".into())
    );
    assert_eq!(
        error_code(
            json_post(format!(r#"{{"text":"{}"}}"#, "a".repeat(501)))
                .send()
                .await
                .unwrap()
        )
        .await,
        (StatusCode::BAD_REQUEST, "validation_error".into())
    );
    let r = c
        .post(url("/api/todos"))
        .header("content-type", "text/plain")
        .body(r#"{"text":"a"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(r).await,
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type".into()
        )
    );
    let r = json_post(format!(r#"{{"text":"{}"}}"#, "a".repeat(64 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(r).await,
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into())
    );
    assert_eq!(
        error_code(c.get(url("/api/todos/abc")).send().await.unwrap()).await,
        (StatusCode::BAD_REQUEST, "invalid_id".into())
    );
    assert_eq!(
        error_code(c.get(url("/nope")).send().await.unwrap()).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    assert_eq!(
        error_code(c.delete(url("/api/todos")).send().await.unwrap()).await,
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".into())
    );

    let r = c
        .get(url("/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(r.text().await.unwrap().contains("# {trace_id=\""));

    let task = app.stop();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
    assert!(
        c.get(url("/health")).send().await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let (config, lines) = test_config();
    let mut app = serve(config, lines).await;
    let c = reqwest::Client::new();
    let slow = tokio::spawn(
        c.post(app.url("/api/todos"))
            .header("x-fault-delay", "300")
            .json(&serde_json::json!({"text":"late"}))
            .send(),
    );
    // The fault is counted just before the handler sleeps: from then on the request is in flight.
    let state = app.state.clone();
    poll(
        "the slow request to be in flight",
        Duration::from_secs(10),
        Duration::from_millis(5),
        async || {
            sample(
                &state.render_metrics(false),
                r#"tp2devops_faults_injected_total{route="/api/todos",kind="latency"}"#,
            )
            // The series exists at 0 from the start: wait for the count.
            .filter(|n| *n >= 1.0)
            .map(|_| ())
        },
    )
    .await;
    let task = app.stop();
    let r = slow
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(r.status(), StatusCode::CREATED);
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("serve returns")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn shutdown_grace_bounds_a_stuck_request() {
    let (mut config, lines) = test_config();
    config.shutdown_grace = Duration::from_millis(100);
    let mut app = serve(config, lines).await;
    let c = reqwest::Client::new();
    // 60 s: far beyond the grace and the timeout below, so only the grace can end the drain.
    let stuck = tokio::spawn(
        c.get(app.url("/api/todos"))
            .header("x-fault-delay", "60000")
            .send(),
    );
    let state = app.state.clone();
    poll(
        "the stuck request to be in flight",
        Duration::from_secs(10),
        Duration::from_millis(5),
        async || {
            sample(
                &state.render_metrics(false),
                r#"tp2devops_faults_injected_total{route="/api/todos",kind="latency"}"#,
            )
            // The series exists at 0 from the start: wait for the count.
            .filter(|n| *n >= 1.0)
            .map(|_| ())
        },
    )
    .await;
    let task = app.stop();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("serve returns once the grace is over")
        .unwrap()
        .unwrap();
    stuck.abort();
}

/// `server.address` / `server.port` on the server span: what the client dialled (a proxy's
/// `X-Forwarded-Host`, else `Host`), the port falling back to the local port of the connection.
#[tokio::test]
async fn server_address_and_port_follow_what_the_client_dialled() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (config, lines) = test_config();
    let spans = config.span_memory.clone().unwrap();
    let app = serve(config, lines).await;
    for (extra, tid) in [
        ("Host: example.com\r\n", "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1"),
        (
            "Host: 127.0.0.1\r\nX-Forwarded-Host: shop.example:8443, inner:1\r\n",
            "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2",
        ),
    ] {
        let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        s.write_all(
            format!(
                "GET /api/todos HTTP/1.1\r\n{extra}traceparent: 00-{tid}-00f067aa0ba902b7-01\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        assert!(
            out.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
    let attr = |tid: &str, key: &str| {
        spans
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.span_context.trace_id().to_string() == tid && s.name == "GET /api/todos")
            .and_then(|s| {
                s.attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == key)
                    .map(|kv| kv.value.to_string())
            })
    };
    let t1 = "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1";
    assert_eq!(attr(t1, "server.address").as_deref(), Some("example.com"));
    assert_eq!(
        attr(t1, "server.port"),
        Some(app.addr.port().to_string()),
        "the local port when Host names none"
    );
    let t2 = "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2";
    assert_eq!(attr(t2, "server.address").as_deref(), Some("shop.example"));
    assert_eq!(attr(t2, "server.port").as_deref(), Some("8443"));
}
