//! Tests of the fault timeline: header picks (pure, seeded), the rules derived for server
//! windows, the server task's timing (paused tokio clock, in-test recording server) and the
//! real todo-api's fault API.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::plan::*;

fn op(name: &str, kind: TodoOp) -> Operation {
    Operation {
        name: name.into(),
        weight: 1,
        kind: OpKind::Todo(kind),
        checks: vec![],
        follow_redirects: None,
        expect_status: Vec::new(),
    }
}

pub(super) fn plan(faults: Vec<FaultWindow>) -> Plan {
    Plan {
        name: "t".into(),
        source: None,
        target: Target {
            base_url: None,
            headers: vec![],
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            ready: Readiness {
                path: "/health".into(),
                timeout: Duration::from_secs(1),
                interval: Duration::from_millis(100),
            },
            max_connections: 1,
            max_body: 1 << 20,
            tls: Default::default(),
            http_version: Default::default(),
            max_streams: 100,
            follow_redirects: 0,
            cookies: false,
        },
        load: LoadModel::Open {
            start_rate: 1.0,
            stages: vec![RateStage {
                duration: Duration::from_secs(60),
                target: 1.0,
            }],
            arrivals: Arrivals::Constant,
            max_in_flight: 1,
            max_queue: 1,
        },
        mix: Mix {
            steady_state: false,
            cleanup: None,
            operations: vec![
                op("create", TodoOp::Create),
                op("list", TodoOp::List),
                op("get", TodoOp::Get),
            ],
            pool_capacity: 10,
        },
        thresholds: vec![],
        compare: vec![],
        output: Output {
            report: None,
            progress: Progress::Quiet,
            interval: Duration::from_secs(1),
            keep_traces: 5,
            html: None,
            junit: None,
            dashboard: None,
            dashboard_token: None,
        },
        seed: 1,
        faults,
        verify: None,
        telemetry: Telemetry {
            metrics_addr: None,
            linger: Duration::ZERO,
            pushgateway: None,
            remote_write: None,
            trace_sample_ratio: 0.0,
            instance: None,
        },
        segment: Segment::WHOLE,
        schedule: Default::default(),
    }
}

fn latency(start_s: u64, len_s: u64, ops: &[&str], share: f64, via: FaultVia) -> FaultWindow {
    FaultWindow {
        start: Duration::from_secs(start_s),
        duration: Duration::from_secs(len_s),
        ops: ops.iter().map(|s| s.to_string()).collect(),
        route: None,
        method: None,
        share,
        kind: FaultKind::Latency {
            delay: Duration::from_millis(800),
            jitter: Duration::from_millis(50),
            span: Some("todo_creation".into()),
        },
        via,
    }
}

fn error(start_s: u64, len_s: u64, status: u16, via: FaultVia) -> FaultWindow {
    FaultWindow {
        start: Duration::from_secs(start_s),
        duration: Duration::from_secs(len_s),
        ops: vec![],
        route: Some("/api/todos".into()),
        method: None,
        share: 1.0,
        kind: FaultKind::Error { status },
        via,
    }
}

#[test]
fn pick_honours_window_bounds_op_filter_and_jitter() {
    let f = HeaderFaults::new(&plan(vec![latency(
        10,
        5,
        &["create"],
        1.0,
        FaultVia::Header,
    )]));
    assert!(!f.is_empty());
    let mut rng = StdRng::seed_from_u64(7);
    assert_eq!(f.pick(0, Duration::from_millis(9_999), &mut rng), None);
    assert_eq!(
        f.pick(0, Duration::from_secs(15), &mut rng),
        None,
        "the end is exclusive"
    );
    assert_eq!(
        f.pick(1, Duration::from_secs(12), &mut rng),
        None,
        "list is not in the window's ops"
    );
    assert_eq!(
        f.pick(99, Duration::from_secs(12), &mut rng),
        None,
        "an unknown op index never matches a filtered window"
    );
    for _ in 0..200 {
        let h = f
            .pick(0, Duration::from_secs(10), &mut rng)
            .expect("create in the window is always faulted at share 1");
        assert_eq!(h.window, 0);
        assert_eq!(h.kind(), "latency");
        assert_eq!(h.span.as_deref(), Some("todo_creation"));
        let d = h.delay_ms.unwrap();
        assert!(
            (800..=850).contains(&d),
            "delay {d} outside delay + [0, jitter]"
        );
    }
}

#[test]
fn pick_outside_windows_draws_nothing_from_the_rng() {
    let f = HeaderFaults::new(&plan(vec![latency(10, 5, &[], 0.5, FaultVia::Header)]));
    let mut a = StdRng::seed_from_u64(3);
    let mut b = StdRng::seed_from_u64(3);
    for i in 0..100 {
        assert_eq!(f.pick(i % 3, Duration::from_secs(20), &mut a), None);
    }
    assert_eq!(
        rand::Rng::random::<u64>(&mut a),
        rand::Rng::random::<u64>(&mut b)
    );
}

#[test]
fn share_is_respected_and_seeded() {
    let f = HeaderFaults::new(&plan(vec![latency(0, 60, &[], 0.25, FaultVia::Header)]));
    let count = |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..10_000)
            .filter(|_| f.pick(1, Duration::from_secs(1), &mut rng).is_some())
            .count()
    };
    let n = count(11);
    assert!((2_200..=2_800).contains(&n), "share 0.25 of 10000 gave {n}");
    assert_eq!(n, count(11), "same seed, same picks");
}

#[test]
fn error_windows_and_server_windows() {
    let f = HeaderFaults::new(&plan(vec![
        error(0, 5, 503, FaultVia::Server),
        error(0, 5, 500, FaultVia::Header),
    ]));
    let mut rng = StdRng::seed_from_u64(1);
    let h = f.pick(2, Duration::from_secs(1), &mut rng).unwrap();
    assert_eq!(
        h,
        HeaderFault {
            window: 1,
            delay_ms: None,
            status: Some(500),
            span: None
        },
        "server windows are not header faults"
    );
    assert_eq!(h.kind(), "error");
    assert!(HeaderFaults::new(&plan(vec![error(0, 5, 503, FaultVia::Server)])).is_empty());
    assert_eq!(
        active_windows(
            &plan(vec![
                error(0, 5, 503, FaultVia::Server),
                latency(3, 5, &[], 1.0, FaultVia::Header)
            ])
            .faults,
            Duration::from_secs(4)
        ),
        vec![0, 1]
    );
}

#[test]
fn server_rules_map_todo_ops_to_routes() {
    let p = plan(vec![
        latency(5, 30, &["create", "get"], 0.5, FaultVia::Server),
        error(1, 2, 503, FaultVia::Server),
        latency(0, 1, &[], 1.0, FaultVia::Header),
    ]);
    let rules = server_rules(&p);
    assert_eq!(rules.len(), 3);
    let (at, w, b) = &rules[0];
    assert_eq!(
        (*at, *w, b.route.as_deref(), b.kind, b.status),
        (
            Duration::from_secs(1),
            1,
            Some("/api/todos"),
            "error",
            Some(503)
        )
    );
    let (at, w, b) = &rules[1];
    assert_eq!((*at, *w), (Duration::from_secs(5), 0));
    assert_eq!(
        (
            b.route.as_deref(),
            b.method.as_deref(),
            b.delay_ms,
            b.jitter_ms,
            b.span.as_deref()
        ),
        (
            Some("/api/todos"),
            Some("POST"),
            Some(800),
            Some(50),
            Some("todo_creation")
        )
    );
    assert_eq!((b.share, b.duration_s), (0.5, 30.0));
    assert_eq!(
        (rules[2].2.route.as_deref(), rules[2].2.method.as_deref()),
        (Some("/api/todos/:id"), Some("GET"))
    );
}

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    auth: Option<String>,
    body: serde_json::Value,
    at: Duration,
}

/// A fault API stand-in that records every request with its (tokio) time since `start`.
async fn recording_server(start: tokio::time::Instant) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    use axum::extract::Request;
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |req: Request| {
        let log = log.clone();
        async move {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20)
                .await
                .unwrap_or_default();
            let mut g = log.lock().unwrap();
            let id = format!("r{}", g.len());
            g.push(Seen {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                auth: parts
                    .headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_string()),
                body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
                at: start.elapsed(),
            });
            (
                axum::http::StatusCode::CREATED,
                axum::Json(serde_json::json!({ "id": id })),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

#[tokio::test(start_paused = true)]
async fn server_windows_are_set_at_their_start_and_deleted_on_stop() {
    let start = tokio::time::Instant::now();
    let (addr, seen) = recording_server(start).await;
    let p = plan(vec![
        error(2, 3, 503, FaultVia::Server),
        latency(20, 10, &["create"], 1.0, FaultVia::Server),
        latency(40, 10, &[], 1.0, FaultVia::Server),
    ]);
    let faults = ServerFaults::spawn(&p, format!("http://{addr}/"), Some("tok".into()), start);
    // Paused clock: the sleep auto-advances, the task's own sleeps fire in order.
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(faults.rule_ids(), vec!["r0", "r1"]);
    let errors = faults.stop().await;
    assert!(errors.is_empty(), "{errors:?}");
    tokio::time::sleep(Duration::from_secs(30)).await;
    let seen = seen.lock().unwrap().clone();
    let calls: Vec<(&str, &str)> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.path.as_str()))
        .collect();
    assert_eq!(
        calls,
        vec![
            ("POST", "/admin/faults"),
            ("POST", "/admin/faults"),
            ("DELETE", "/admin/faults/r0"),
            ("DELETE", "/admin/faults/r1")
        ],
        "the window at 40 s was cancelled"
    );
    assert!(seen.iter().all(|s| s.auth.as_deref() == Some("Bearer tok")));
    assert!(
        seen[0].at >= Duration::from_secs(2) && seen[0].at < Duration::from_secs(20),
        "first rule at {:?}",
        seen[0].at
    );
    assert!(
        seen[1].at >= Duration::from_secs(20),
        "second rule at {:?}",
        seen[1].at
    );
    assert_eq!(seen[0].body["kind"], "error");
    assert_eq!(seen[0].body["status"], 503);
    assert_eq!(seen[0].body["duration_s"], 3.0);
    assert_eq!(seen[1].body["route"], "/api/todos");
    assert_eq!(seen[1].body["method"], "POST");
    assert_eq!(seen[1].body["span"], "todo_creation");
}

async fn todo_api(token: Option<&str>) -> (String, tokio::sync::oneshot::Sender<()>) {
    let config = todo_api::Config {
        faults_enabled: true,
        fault_token: token.map(str::to_string),
        log: todo_api::LogOutput::Off,
        shutdown_grace: Duration::from_millis(100),
        ..todo_api::Config::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(todo_api::serve(
        listener,
        todo_api::AppState::new(config),
        async move {
            let _ = rx.await;
        },
    ));
    (base, tx)
}

async fn active_rules(base: &str, token: &str) -> Vec<serde_json::Value> {
    let r = reqwest::Client::new()
        .get(format!("{base}/admin/faults"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn real_todo_api_gets_the_rule_and_loses_it_on_stop() {
    let (base, _stop) = todo_api(Some("secret")).await;
    let p = plan(vec![latency(0, 30, &["create"], 1.0, FaultVia::Server)]);
    let faults = ServerFaults::spawn(
        &p,
        base.clone(),
        Some("secret".into()),
        tokio::time::Instant::now(),
    );
    // Readiness poll (bounded), not a fixed sleep: the rule appears once the POST returned.
    let mut rules = vec![];
    for _ in 0..200 {
        rules = active_rules(&base, "secret").await;
        if !rules.is_empty() && !faults.rule_ids().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0]["route"], "/api/todos");
    assert_eq!(rules[0]["method"], "POST");
    assert_eq!(rules[0]["delay_ms"], 800);
    assert_eq!(
        rules[0]["id"].as_str(),
        faults.rule_ids().first().map(String::as_str)
    );
    let errors = faults.stop().await;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        active_rules(&base, "secret").await.is_empty(),
        "stop() deleted the rule"
    );
}

#[tokio::test]
async fn wrong_token_and_missing_api_are_reported_as_text() {
    let p = plan(vec![error(0, 5, 503, FaultVia::Server)]);
    for (token, expect) in [(Some("secret"), "401"), (None, "404")] {
        let (base, _stop) = todo_api(token).await;
        let faults =
            ServerFaults::spawn(&p, base, Some("wrong".into()), tokio::time::Instant::now());
        // The single window's POST is done once the task finished; stop() then reports it.
        for _ in 0..200 {
            if faults.task.as_ref().is_none_or(|t| t.is_finished()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let errors = faults.stop().await;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains(expect) && errors[0].starts_with("fault window 0: POST"),
            "{}",
            errors[0]
        );
    }
}

#[tokio::test]
async fn a_server_error_window_fails_only_the_chosen_operation_until_stopped() {
    let (base, _stop) = todo_api(Some("secret")).await;
    let mut w = error(0, 30, 503, FaultVia::Server);
    (w.route, w.ops) = (None, vec!["create".into()]);
    let faults = ServerFaults::spawn(
        &plan(vec![w]),
        base.clone(),
        Some("secret".into()),
        tokio::time::Instant::now(),
    );
    for _ in 0..200 {
        if !faults.rule_ids().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let http = reqwest::Client::new();
    let create = || {
        http.post(format!("{base}/api/todos"))
            .json(&serde_json::json!({"text": "x"}))
            .send()
    };
    let r = create().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "fault_injected"
    );
    assert_eq!(
        http.get(format!("{base}/api/todos"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "GET is not the create operation"
    );
    assert!(faults.stop().await.is_empty());
    assert_eq!(
        create().await.unwrap().status(),
        201,
        "the rule is gone after stop()"
    );
}

#[test]
fn the_fault_counter_is_read_from_the_exposition() {
    let text = "# HELP tp2devops_faults_injected Faults injected into requests\n\
        # TYPE tp2devops_faults_injected counter\n\
        tp2devops_faults_injected_total{route=\"/api/todos\",kind=\"error\"} 4\n\
        tp2devops_faults_injected_total{route=\"/api/todos/:id\",kind=\"latency\"} 2 # {trace_id=\"ab\"} 1\n";
    let c = parse_fault_counter(text).unwrap();
    assert_eq!(c[&("/api/todos".to_string(), "error".to_string())], 4.0);
    assert_eq!(
        c[&("/api/todos/:id".to_string(), "latency".to_string())],
        2.0
    );
    // The family without samples yet is "0 everywhere"; no family at all is "not a todo-api".
    let empty = "# TYPE tp2devops_faults_injected counter\n";
    assert_eq!(parse_fault_counter(empty), Some(Counter::new()));
    assert_eq!(parse_fault_counter("up 1\n"), None);
}

#[tokio::test]
async fn server_side_faults_are_the_target_counter_minus_header_faults() {
    let (base, _stop) = todo_api(Some("secret")).await;
    // A server window on POST /api/todos (every request, 1 ms) for the whole test.
    let mut w = latency(0, 60, &["create"], 1.0, FaultVia::Server);
    if let FaultKind::Latency { delay, .. } = &mut w.kind {
        *delay = Duration::from_millis(1);
    }
    let p = plan(vec![w]);
    let before = read_counter(&p, &base).await;
    assert!(before.is_some(), "a todo-api has the counter");
    let mut faults = ServerFaults::spawn(
        &p,
        base.clone(),
        Some("secret".into()),
        tokio::time::Instant::now(),
    );
    faults.set_before(before);
    for _ in 0..200 {
        if !faults.rule_ids().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let client = reqwest::Client::new();
    // 3 requests under the rule; 2 more carry a header error fault (the generator's own).
    for i in 0..5 {
        let mut req = client
            .post(format!("{base}/api/todos"))
            .json(&serde_json::json!({"text": "x"}));
        if i >= 3 {
            req = req.header("X-Fault-Status", "503");
        }
        req.send().await.unwrap();
    }
    let (errors, measured) = faults.stop_and_measure().await;
    assert!(errors.is_empty(), "{errors:?}");
    let t = measured
        .expect("read before and after")
        .with_header(ByKind {
            latency: 0,
            error: 2,
        });
    assert_eq!(
        t.header,
        ByKind {
            latency: 0,
            error: 2
        }
    );
    assert_eq!(t.counted.error, 2, "{t:?}");
    assert!(t.counted.latency >= 3, "{t:?}");
    assert_eq!(t.server.error, 0);
    assert_eq!(t.server.latency, t.counted.latency);
    assert!(t.routes.iter().all(|r| r.route == "/api/todos"), "{t:?}");
}
