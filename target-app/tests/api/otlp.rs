//! Spans reach a real OTLP receiver: rotel (ROTEL_BIN) listens on ephemeral loopback ports and
//! prints what it receives; the todo-api binary runs with only the standard `OTEL_*` variables,
//! gets a little traffic with known `traceparent`s, and is stopped with SIGTERM. The batch
//! delay is set far beyond the test, so the spans can only arrive through the shutdown flush.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{ChildGuard, poll};

/// One span as rotel's detailed debug log prints it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Span {
    pub trace_id: String,
    pub parent_id: String,
    pub id: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub attrs: BTreeMap<String, String>,
}

pub(crate) fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn parse_spans(text: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut cur: Option<Span> = None;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("Span #") {
            spans.extend(cur.take());
            cur = Some(Span::default());
            continue;
        }
        if t.starts_with("ResourceSpans #") || t.starts_with("ScopeSpans #") {
            spans.extend(cur.take());
            continue;
        }
        let Some(s) = cur.as_mut() else { continue };
        if let Some(kv) = t.strip_prefix("-> ") {
            if let Some((k, v)) = kv.split_once(": ") {
                s.attrs.insert(k.to_string(), v.to_string());
            }
        } else if let Some((k, v)) = t.split_once(':') {
            let v = v.trim().to_string();
            match k.trim() {
                "Trace ID" => s.trace_id = v,
                "Parent ID" => s.parent_id = v,
                "ID" => s.id = v,
                "Name" => s.name = v,
                "Kind" => s.kind = v,
                "Status code" => s.status = v,
                _ => {}
            }
        }
    }
    spans.extend(cur);
    spans
}

pub(crate) fn tp(trace: &str, parent: &str) -> String {
    format!("00-{trace}-{parent}-01")
}

const T_CREATE: &str = "11111111111111111111111111111111";
const T_SLOW: &str = "22222222222222222222222222222222";
const T_FAIL: &str = "33333333333333333333333333333333";
const T_LIST: &str = "44444444444444444444444444444444";
const T_UPDATE: &str = "55555555555555555555555555555555";
const T_DELETE: &str = "66666666666666666666666666666666";
const T_NOWHERE: &str = "77777777777777777777777777777777";
const T_EMBEDDED: &str = "88888888888888888888888888888888";
pub(crate) const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_a_real_otlp_receiver() {
    let rotel = crate::support::start_rotel().await;
    let (http, out_path) = (rotel.http, rotel.out.clone());
    let dir = tempfile::tempdir().unwrap();

    let app_out = dir.path().join("app.out");
    let mut app = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_todo-api"))
            .env_clear()
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("FAULTS_ENABLED", "true")
            .env("LOG", "stdout")
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{http}"),
            )
            .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&app_out).unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the todo-api binary"),
    );
    let stderr = app.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let listening = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the app says where it listens");
    let base = listening
        .split("listening on ")
        .nth(1)
        .unwrap_or_else(|| panic!("unexpected first line: {listening}"))
        .trim()
        .to_string();
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();

    let c = reqwest::Client::new();
    let post = |trace: &str| {
        c.post(format!("{base}/api/todos"))
            .header("traceparent", tp(trace, CALLER_SPAN))
    };
    assert_eq!(
        post(T_CREATE)
            .json(&serde_json::json!({"text":"traced"}))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let r = post(T_SLOW)
        .header("x-fault-delay", "20")
        .header("x-fault-span", "todo_creation")
        .json(&serde_json::json!({"text":"slow"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .get(format!("{base}/api/todos/1"))
        .header("traceparent", tp(T_FAIL, CALLER_SPAN))
        .header("x-fault-status", "503")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    c.get(format!("{base}/api/todos"))
        .header("traceparent", tp(T_LIST, CALLER_SPAN))
        .send()
        .await
        .unwrap();
    let r = c
        .put(format!("{base}/api/todos/1"))
        .header("traceparent", tp(T_UPDATE, CALLER_SPAN))
        .json(&serde_json::json!({"completed":true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .delete(format!("{base}/api/todos/2"))
        .header("traceparent", tp(T_DELETE, CALLER_SPAN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let r = c
        .get(format!("{base}/nowhere?x=1"))
        .header("traceparent", tp(T_NOWHERE, CALLER_SPAN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The library embedded in this process, endpoint given in its Config (no environment).
    let (mut config, lines) = crate::support::test_config();
    config.service_name = "embedded-todo".into();
    config.otlp_traces_endpoint = Some(format!("http://127.0.0.1:{http}/v1/traces"));
    let embedded = crate::support::with_config(config, lines);
    let r = embedded
        .call(
            crate::support::req(http::Method::GET, "/api/todos")
                .header("traceparent", tp(T_EMBEDDED, CALLER_SPAN))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 200);
    let state = embedded.state.clone();
    tokio::task::spawn_blocking(move || state.shutdown_telemetry())
        .await
        .unwrap();

    // SIGTERM: the app stops and flushes its spans.
    let pid = app.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = poll(
        "the app to exit after SIGTERM",
        Duration::from_secs(30),
        Duration::from_millis(50),
        async || app.0.try_wait().unwrap(),
    )
    .await;
    assert!(status.success(), "exit status {status}");

    let spans = poll(
        "spans of all eight traces at rotel",
        Duration::from_secs(30),
        Duration::from_millis(100),
        async || {
            let text = strip_ansi(&std::fs::read_to_string(&out_path).unwrap_or_default());
            let spans = parse_spans(&text);
            let done = [
                T_CREATE, T_SLOW, T_FAIL, T_LIST, T_UPDATE, T_DELETE, T_NOWHERE, T_EMBEDDED,
            ]
            .iter()
            .all(|t| {
                spans
                    .iter()
                    .any(|s| s.trace_id == *t && s.kind == "SPAN_KIND_SERVER")
            });
            done.then_some((text, spans))
        },
    )
    .await;
    let (text, spans) = spans;
    assert!(
        text.contains("service.name: Str(tp2devops-backend)"),
        "{text}"
    );
    assert!(text.contains("service.name: Str(embedded-todo)"), "{text}");
    let in_trace = |t: &str| {
        spans
            .iter()
            .filter(|s| s.trace_id == t)
            .cloned()
            .collect::<Vec<_>>()
    };
    let named = |v: &[Span], n: &str| {
        v.iter()
            .find(|s| s.name == n)
            .cloned()
            .unwrap_or_else(|| panic!("no span {n} in {v:#?}"))
    };

    let t = in_trace(T_EMBEDDED);
    assert_eq!(
        named(&t, "list_todos").parent_id,
        named(&t, "GET /api/todos").id
    );

    // The create tree: server span under the caller's span, create_todo under it, three children.
    let t = in_trace(T_CREATE);
    assert_eq!(t.len(), 5, "{t:#?}");
    let server = named(&t, "POST /api/todos");
    assert_eq!(server.kind, "SPAN_KIND_SERVER");
    assert_eq!(
        server.parent_id, CALLER_SPAN,
        "continues the caller's traceparent"
    );
    for (k, v) in [
        ("http.request.method", "Str(POST)".to_string()),
        ("http.route", "Str(/api/todos)".into()),
        ("url.path", "Str(/api/todos)".into()),
        ("url.scheme", "Str(http)".into()),
        ("http.response.status_code", "Int(201)".into()),
        ("server.address", "Str(127.0.0.1)".into()),
        ("server.port", format!("Int({port})")),
        ("client.address", "Str(127.0.0.1)".into()),
        ("network.protocol.version", "Str(1.1)".into()),
    ] {
        assert_eq!(server.attrs.get(k), Some(&v), "{k} on {server:#?}");
    }
    assert_ne!(server.status, "STATUS_CODE_ERROR");
    let op = named(&t, "create_todo");
    assert_eq!(op.parent_id, server.id);
    for child in ["validation", "todo_creation", "metrics_update"] {
        assert_eq!(
            named(&t, child).parent_id,
            op.id,
            "{child} is a child of create_todo"
        );
    }
    assert!(
        t.iter().all(|s| !s.attrs.contains_key("fault.kind")),
        "no fault without a fault header"
    );

    // The latency fault sits on the span it slowed.
    let t = in_trace(T_SLOW);
    let slowed = named(&t, "todo_creation");
    assert_eq!(
        slowed.attrs.get("fault.kind").map(String::as_str),
        Some("Str(latency)"),
        "{slowed:#?}"
    );
    assert_eq!(
        slowed.attrs.get("fault.delay_ms").map(String::as_str),
        Some("Int(20)")
    );
    assert!(!named(&t, "create_todo").attrs.contains_key("fault.kind"));

    // The error fault: operation span and server span failed.
    let t = in_trace(T_FAIL);
    let server = named(&t, "GET /api/todos/:id");
    assert_eq!(
        server.status, "STATUS_CODE_ERROR",
        "5xx marks the server span: {server:#?}"
    );
    assert_eq!(
        server
            .attrs
            .get("http.response.status_code")
            .map(String::as_str),
        Some("Int(503)")
    );
    assert_eq!(
        server.attrs.get("http.route").map(String::as_str),
        Some("Str(/api/todos/:id)")
    );
    assert_eq!(
        server.attrs.get("url.path").map(String::as_str),
        Some("Str(/api/todos/1)")
    );
    let op = named(&t, "get_todo");
    assert_eq!(op.parent_id, server.id);
    assert_eq!(op.status, "STATUS_CODE_ERROR");
    assert_eq!(
        op.attrs.get("fault.kind").map(String::as_str),
        Some("Str(error)")
    );

    for (trace, server_name, op_name) in [
        (T_LIST, "GET /api/todos", "list_todos"),
        (T_UPDATE, "PUT /api/todos/:id", "update_todo"),
        (T_DELETE, "DELETE /api/todos/:id", "delete_todo"),
    ] {
        let t = in_trace(trace);
        let server = named(&t, server_name);
        assert_eq!(named(&t, op_name).parent_id, server.id, "{op_name}");
    }

    // No route matched: the span is named by the method alone and has no http.route.
    let t = in_trace(T_NOWHERE);
    assert_eq!(t.len(), 1, "{t:#?}");
    assert_eq!(t[0].name, "GET");
    assert!(!t[0].attrs.contains_key("http.route"), "{t:#?}");
    assert_eq!(
        t[0].attrs.get("url.query").map(String::as_str),
        Some("Str(x=1)")
    );
    assert_eq!(
        t[0].attrs
            .get("http.response.status_code")
            .map(String::as_str),
        Some("Int(404)")
    );
    assert_ne!(
        t[0].status, "STATUS_CODE_ERROR",
        "a 4xx does not fail a server span"
    );

    // The log lines carry the same trace ids.
    let logs = std::fs::read_to_string(&app_out).unwrap();
    for t in [T_CREATE, T_SLOW, T_FAIL] {
        assert!(
            logs.contains(&format!("\"traceId\":\"{t}\"")),
            "{t} not in the logs:\n{logs}"
        );
    }
}
