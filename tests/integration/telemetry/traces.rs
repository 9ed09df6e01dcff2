//! One trace across both sides: the generator's client span and the todo-api's server span
//! share the trace id, and the server span's parent is the client span, as a real OTLP
//! receiver (rotel) sees them.
//!
//! The todo-api takes its OTLP endpoint from the standard environment variables only, and a
//! test must not change its own environment; so the todo-api runs in a child process: this
//! test binary re-run with the endpoint in its environment and only the (otherwise ignored)
//! entry point `todo_api_process` selected.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use trafficgen::recorder::SpanRecord;
use trafficgen::telemetry::Telemetry;

use super::otlp::{received, rotel, wait_received};
use super::{Proc, config, report, snapshot};

/// Entry point of the child process: serves the todo-api (span export on, endpoint from the
/// environment) on an ephemeral port, prints it, and stops when stdin closes.
#[test]
#[ignore = "entry point of the todo-api child process of one_trace_spans_generator_and_todo_api"]
fn todo_api_process() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("LISTENING {}", listener.local_addr().unwrap());
        let config = todo_api::Config {
            host: [127, 0, 0, 1].into(),
            port: 0,
            log: todo_api::LogOutput::Off,
            otlp_export: true,
            shutdown_grace: Duration::from_secs(1),
            ..Default::default()
        };
        let stdin_closed = async {
            let _ =
                tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await;
        };
        todo_api::serve(listener, todo_api::AppState::new(config), stdin_closed)
            .await
            .unwrap();
    });
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test]
async fn one_trace_spans_generator_and_todo_api() {
    let dir = tempfile::tempdir().unwrap();
    let (_rotel, endpoint) = rotel(dir.path()).await;

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "telemetry::traces::todo_api_process",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("LISTENING ").map(str::to_string))
        .expect("the todo-api child never said where it listens");
    let mut api = Proc(child);

    let mut cfg = config("trace-1");
    cfg.otlp_endpoint = Some(endpoint);
    let t = Telemetry::start_with(cfg).await.unwrap();
    let tx = t.span_sender().unwrap();
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for n in 1..=3u8 {
        // What the executor does: its own ids in `traceparent`, then the span record.
        let trace_id = [0xc0, n, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, n];
        let span_id = [0xd0, n, 1, 1, 2, 2, 3, 3];
        let traceparent = format!("00-{}-{}-01", hex(&trace_id), hex(&span_id));
        let url = format!("http://{addr}/api/todos");
        let start = SystemTime::now();
        let resp = client
            .post(&url)
            .header("traceparent", traceparent)
            .header("content-type", "application/json")
            .body(r#"{"text":"one trace"}"#)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        assert_eq!(status, 201);
        tx.try_send(SpanRecord {
            trace_id,
            span_id,
            op: Arc::from("create"),
            method: "POST",
            url,
            status: Some(status),
            error: None,
            start,
            duration: start.elapsed().unwrap_or_default(),
            fault: None,
        })
        .unwrap();
        ids.push((hex(&trace_id), hex(&span_id)));
    }
    let mut t = t;
    t.observe(&snapshot(true));
    assert!(t.finish(&report("trace-1")).await.is_empty());
    // Closing stdin stops the todo-api, which flushes its spans on the way out.
    drop(stdin);
    for _ in 0..100 {
        if api.0.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(api);

    let text = wait_received(dir.path(), "client and server spans of every trace", |t| {
        ids.iter()
            .all(|(tid, _)| t.matches(tid.as_str()).count() >= 2)
    })
    .await;
    for (tid, sid) in &ids {
        let spans: Vec<&str> = text
            .split("Span #")
            .filter(|s| s.contains(tid.as_str()))
            .collect();
        let client_span = spans
            .iter()
            .find(|s| s.contains("SPAN_KIND_CLIENT"))
            .unwrap_or_else(|| panic!("no client span for {tid}:\n{}", received(dir.path())));
        assert!(
            client_span.contains(&format!("ID             : {sid}")),
            "{client_span}"
        );
        assert!(client_span.contains("POST create"), "{client_span}");
        let server_span = spans
            .iter()
            .find(|s| s.contains("SPAN_KIND_SERVER"))
            .unwrap_or_else(|| panic!("no server span for {tid}:\n{}", received(dir.path())));
        assert!(
            server_span.contains(&format!("Parent ID      : {sid}")),
            "{server_span}"
        );
    }
    // Both services reported: the generator and the todo-api.
    assert!(text.contains("service.name: Str(trafficgen)"), "{text}");
    assert!(
        text.contains("service.name: Str(tp2devops-backend)"),
        "{text}"
    );
}
