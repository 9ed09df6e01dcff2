//! Flows from a scenario file, against an in-test server behind a path prefix: a captured
//! `Location` (an absolute path, or an absolute URL of the target) is the next step's target
//! without the prefix doubled; a `Location` of another origin fails that step
//! (`cross_origin`) and the other origin gets nothing; a capture that finds nothing fails its
//! step (`capture_missing`) and the flow stops instead of sending an empty value on. Each
//! step's counts are in the report, the flow counts whole flows, and the summary lists steps.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use serde_json::Value;

#[derive(Default)]
struct Hits {
    posts: AtomicU64,
    gets: AtomicU64,
}

/// Serves `POST /base/things` (201, body without an id, `Location: {location}` with `{self}`
/// replaced by its own origin), `GET /base/things/1` (200) and `/base/health`, until the test
/// ends.
async fn server(location: &str) -> (String, Arc<Hits>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let location = location.replace("{self}", &origin);
    let hits = Arc::new(Hits::default());
    let (h1, h2) = (hits.clone(), hits.clone());
    let app = Router::new()
        .route("/base/health", get(|| async { "ok" }))
        .route(
            "/base/things",
            post(move || {
                let (hits, location) = (h1.clone(), location.clone());
                async move {
                    hits.posts.fetch_add(1, Ordering::Relaxed);
                    let mut h = HeaderMap::new();
                    h.insert("location", HeaderValue::from_str(&location).unwrap());
                    (StatusCode::CREATED, h, r#"{"name":"thing"}"#)
                }
            }),
        )
        .route(
            "/base/things/1",
            get(move || {
                let hits = h2.clone();
                async move {
                    hits.gets.fetch_add(1, Ordering::Relaxed);
                    "thing"
                }
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (origin, hits)
}

/// A 1 s run (20 flows) of a two-step flow: create, then GET the captured `next`.
fn run(origin: &str, capture: &str, dir: &std::path::Path, name: &str) -> (Value, String) {
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &file,
        format!(
            "name: flows\n\
             target:\n  url: {origin}/base\n\
             load:\n  model: open\n  stages:\n    - {{duration: 1s, rate: 20/s}}\n\
             mix:\n  operations:\n    - name: make\n      flow:\n\
             \x20       - name: create\n          request: {{method: POST, path: /things, body: \"{{}}\"}}\n\
             \x20         capture: {{next: \"{capture}\"}}\n\
             \x20       - name: read\n          request: {{path: \"{{{{next}}}}\"}}\n\
             \x20         checks: {{status: 200}}\n\
             output:\n  progress: quiet\n"
        ),
    )
    .unwrap();
    let report = dir.join(format!("{name}.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_trafficgen"))
        .arg("run")
        .arg(&file)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = std::fs::read(&report).unwrap_or_else(|e| {
        panic!(
            "no report ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (serde_json::from_slice(&text).unwrap(), stdout)
}

fn errors(v: &Value, kind: usize) -> u64 {
    v["counts"]["errors"][kind].as_u64().unwrap()
}

/// `ErrorKind` positions in the report's error lists.
const CAPTURE_MISSING: usize = 9;
const CROSS_ORIGIN: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_follow_captured_locations_and_fail_on_missing_captures() {
    let dir = tempfile::tempdir().unwrap();
    for (name, location) in [("url", "{self}/base/things/1"), ("path", "/base/things/1")] {
        let (origin, hits) = server(location).await;
        let (r, stdout) = run(&origin, "header:Location", dir.path(), name);
        let flow = &r["ops"][0][1];
        assert_eq!(flow["counts"]["requests"], 20, "{name}: 20 flows");
        assert_eq!(
            flow["counts"]["status"],
            serde_json::json!([[200, 20]]),
            "{name}"
        );
        let steps = flow["steps"].as_array().unwrap();
        assert_eq!(steps[0][0], "create");
        assert_eq!(
            steps[0][1]["counts"]["status"],
            serde_json::json!([[201, 20]])
        );
        assert_eq!(
            steps[1][1]["counts"]["status"],
            serde_json::json!([[200, 20]])
        );
        assert_eq!(
            hits.gets.load(Ordering::Relaxed),
            20,
            "{name}: no prefix doubled"
        );
        assert!(stdout.contains("make: 20 flows"), "{stdout}");
        assert!(
            stdout.contains("step 2 read: 20 requests, errors 0"),
            "{stdout}"
        );
    }

    // Another origin: refused, named, and nothing reaches it.
    let other = server("/unused").await;
    let (origin, hits) = server(&format!("{}/base/things/1", other.0)).await;
    let (r, stdout) = run(&origin, "header:Location", dir.path(), "cross");
    let flow = &r["ops"][0][1];
    assert_eq!(errors(flow, CROSS_ORIGIN), 20, "{flow}");
    assert_eq!(errors(&flow["steps"][1][1], CROSS_ORIGIN), 20);
    assert_eq!(hits.posts.load(Ordering::Relaxed), 20);
    assert_eq!(
        other.1.gets.load(Ordering::Relaxed),
        0,
        "the other origin got nothing"
    );
    assert_eq!(hits.gets.load(Ordering::Relaxed), 0);
    assert!(stdout.contains("cross_origin 20"), "{stdout}");

    // A capture that finds nothing fails its step; the next one is not sent.
    let (origin, hits) = server("/base/things/1").await;
    let (r, stdout) = run(&origin, "/id", dir.path(), "missing");
    let flow = &r["ops"][0][1];
    assert_eq!(errors(flow, CAPTURE_MISSING), 20, "{flow}");
    let steps = flow["steps"].as_array().unwrap();
    assert_eq!(errors(&steps[0][1], CAPTURE_MISSING), 20);
    assert_eq!(
        steps[0][1]["counts"]["status"],
        serde_json::json!([[201, 20]])
    );
    assert_eq!(steps[1][1]["counts"]["requests"], 0, "the flow stopped");
    assert_eq!(
        hits.gets.load(Ordering::Relaxed),
        0,
        "no request with an empty value"
    );
    assert!(stdout.contains("capture_missing 20"), "{stdout}");
}

/// The steps' series on the generator's own `/metrics` (scraped while the run lingers): the
/// flow's `op` series count flows, the step series count each step's requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_steps_have_their_own_series() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, _hits) = server("/base/things/1").await;
    let metrics = format!("127.0.0.1:{}", crate::support::free_port());
    let file = dir.path().join("m.yaml");
    std::fs::write(
        &file,
        format!(
            "name: flows\n\
             target:\n  url: {origin}/base\n\
             load:\n  model: open\n  stages:\n    - {{duration: 1s, rate: 20/s}}\n\
             mix:\n  operations:\n    - name: make\n      flow:\n\
             \x20       - name: create\n          request: {{method: POST, path: /things}}\n\
             \x20         capture: {{next: \"header:Location\"}}\n\
             \x20       - name: read\n          request: {{path: \"{{{{next}}}}\"}}\n\
             telemetry:\n  metrics_addr: {metrics}\n  linger: 3s\n\
             output:\n  progress: quiet\n"
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_trafficgen"))
        .arg("run")
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut text = String::new();
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(format!("http://{metrics}/metrics")).await
            && let Ok(t) = r.text().await
        {
            let done = t
                .lines()
                .any(|l| l.starts_with("trafficgen_run_finished{") && l.ends_with(" 1"));
            text = t;
            if done {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value = |prefix: &str, needles: &[&str]| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix) && needles.iter().all(|n| l.contains(n)))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} {needles:?} in:\n{text}"))
    };
    let step = |name: &str, class: &str| {
        value(
            "trafficgen_flow_step_requests_total{",
            &[
                "op=\"make\"",
                &format!("step=\"{name}\""),
                &format!("status_class=\"{class}\""),
            ],
        )
    };
    assert_eq!(step("create", "2xx"), 20.0);
    assert_eq!(step("read", "2xx"), 20.0);
    assert_eq!(
        value(
            "trafficgen_requests_total{",
            &["op=\"make\"", "status_class=\"2xx\""]
        ),
        20.0,
        "the flow's own series count flows"
    );
    assert_eq!(
        value(
            "trafficgen_flow_step_response_time_seconds_count{",
            &["step=\"read\""]
        ),
        20.0
    );
}
