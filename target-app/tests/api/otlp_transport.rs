//! OTLP transports at a real receiver: the todo-api binary exports to rotel over gRPC and over
//! HTTP, with the general and the per-signal endpoint variables (and every id its logs show is
//! a span rotel received), and `OTEL_EXPORTER_OTLP_HEADERS` reaches OTLP/HTTP and OTLP/gRPC
//! endpoints of our own that record the export's request headers (rotel does not show them).

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::otlp::{CALLER_SPAN, parse_spans, strip_ansi, tp};
use crate::support::{ChildGuard, poll, start_rotel};

/// Runs the binary with `env`, sends `send` (given its base URL), stops it with SIGTERM;
/// returns its log lines (stdout).
async fn run_app(env: &[(&str, String)], send: impl AsyncFnOnce(&str)) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("app.out");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_todo-api"));
    cmd.env_clear()
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env("FAULTS_ENABLED", "true")
        .env("LOG", "stdout")
        // Far beyond the test: spans can only arrive through the shutdown flush.
        .env("OTEL_BSP_SCHEDULE_DELAY", "600000");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut app = ChildGuard(
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&log_path).unwrap())
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
    send(&base).await;
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
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(status.success(), "exit status {status}: {rest:?}");
    std::fs::read_to_string(&log_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

const T_GRPC: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const T_GRPC_SIGNAL: &str = "a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2";
const T_HTTP_SIGNAL: &str = "a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_rotel_over_grpc_and_http_with_general_and_per_signal_endpoints() {
    let rotel = start_rotel().await;
    let c = reqwest::Client::new();
    let faulted = |trace: &'static str| {
        let c = c.clone();
        async move |base: &str| {
            // Not traced by default: no span of its own.
            assert_eq!(
                c.get(format!("{base}/health"))
                    .send()
                    .await
                    .unwrap()
                    .status(),
                200
            );
            let r = c
                .get(format!("{base}/api/todos"))
                .header("traceparent", tp(trace, CALLER_SPAN))
                .header("x-fault-status", "503")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 503);
            // An unsampled caller: nothing recorded, no id shown.
            let r = c
                .get(format!("{base}/api/todos"))
                .header(
                    "traceparent",
                    "00-b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0-00f067aa0ba902b7-00",
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            // A root request (no traceparent): sampled by the default always_on.
            let r = c.get(format!("{base}/api/todos/1")).send().await.unwrap();
            assert_eq!(r.status(), 404);
        }
    };
    let mut logs = Vec::new();
    logs.extend(
        run_app(
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
                (
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    format!("http://127.0.0.1:{}", rotel.grpc),
                ),
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "x-scope-orgid=tenant-1".into(),
                ),
            ],
            faulted(T_GRPC),
        )
        .await,
    );
    logs.extend(
        run_app(
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    format!("http://127.0.0.1:{}", rotel.grpc),
                ),
            ],
            faulted(T_GRPC_SIGNAL),
        )
        .await,
    );
    logs.extend(
        run_app(
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
                // The general endpoint points nowhere: the per-signal one must win.
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9".into()),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    format!("http://127.0.0.1:{}/v1/traces", rotel.http),
                ),
            ],
            faulted(T_HTTP_SIGNAL),
        )
        .await,
    );
    let spans = poll(
        "server spans of the three runs at rotel",
        Duration::from_secs(30),
        Duration::from_millis(100),
        async || {
            let text = strip_ansi(&std::fs::read_to_string(&rotel.out).unwrap_or_default());
            let spans = parse_spans(&text);
            [T_GRPC, T_GRPC_SIGNAL, T_HTTP_SIGNAL]
                .iter()
                .all(|t| {
                    spans
                        .iter()
                        .any(|s| s.trace_id == *t && s.kind == "SPAN_KIND_SERVER")
                })
                .then_some(spans)
        },
    )
    .await;
    for t in [T_GRPC, T_GRPC_SIGNAL, T_HTTP_SIGNAL] {
        let server = spans
            .iter()
            .find(|s| s.trace_id == t && s.kind == "SPAN_KIND_SERVER")
            .unwrap();
        assert_eq!(server.name, "GET /api/todos");
        assert_eq!(server.status, "STATUS_CODE_ERROR");
        for (k, v) in [
            ("error.type", "Str(503)"),
            ("http.request.method", "Str(GET)"),
            ("http.route", "Str(/api/todos)"),
            ("http.response.status_code", "Int(503)"),
            ("url.path", "Str(/api/todos)"),
            ("server.address", "Str(127.0.0.1)"),
        ] {
            assert_eq!(
                server.attrs.get(k).map(String::as_str),
                Some(v),
                "{k} on {server:#?}"
            );
        }
        assert!(server.attrs.contains_key("server.port"), "{server:#?}");
    }
    assert!(
        !spans.iter().any(|s| s.name == "GET /health"),
        "/health is not traced by default"
    );
    // Every id a log line shows was exported: each (traceId, spanId) is a span rotel received
    // (a root's server span included), and the unsampled caller's trace appears nowhere.
    let shown: Vec<(String, String)> = logs
        .iter()
        .filter_map(|l| {
            Some((
                l.get("traceId")?.as_str()?.to_string(),
                l["spanId"].as_str()?.to_string(),
            ))
        })
        .collect();
    // Per run: the faulted request (error + access line) and the root 404 (error + access).
    assert_eq!(shown.len(), 3 * 4, "{logs:#?}");
    // The batch may still be arriving for the last ids: poll until all are there.
    poll(
        "every shown id at rotel",
        Duration::from_secs(30),
        Duration::from_millis(100),
        async || {
            let text = strip_ansi(&std::fs::read_to_string(&rotel.out).unwrap_or_default());
            let spans = parse_spans(&text);
            shown
                .iter()
                .all(|(t, s)| spans.iter().any(|x| x.trace_id == *t && x.id == *s))
                .then_some(())
        },
    )
    .await;
    let text = std::fs::read_to_string(&rotel.out).unwrap_or_default();
    assert!(!text.contains("b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"));
    assert!(
        !logs
            .iter()
            .any(|l| l.to_string().contains("b0b0b0b0b0b0b0b0")),
        "no id of an unsampled trace in the logs"
    );
}

/// `OTEL_EXPORTER_OTLP_HEADERS` reaches the collector: an OTLP/HTTP endpoint of our own
/// records the request headers of the export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_headers_are_sent_with_the_http_export() {
    let seen: std::sync::Arc<std::sync::Mutex<Vec<http::HeaderMap>>> = Default::default();
    let record = seen.clone();
    let collector = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(async move |headers: http::HeaderMap| {
            record.lock().unwrap().push(headers);
            (
                [("content-type", "application/x-protobuf")],
                Vec::<u8>::new(),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move { axum::serve(listener, collector).await });
    run_app(
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{port}"),
            ),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-scope-orgid=tenant-1,authorization=Bearer%20s3cret".into(),
            ),
        ],
        async |base: &str| {
            reqwest::get(format!("{base}/api/todos")).await.unwrap();
        },
    )
    .await;
    let got = poll(
        "an export at the collector",
        Duration::from_secs(30),
        Duration::from_millis(50),
        async || seen.lock().unwrap().first().cloned(),
    )
    .await;
    server.abort();
    assert_eq!(got["x-scope-orgid"], "tenant-1");
    assert_eq!(got["authorization"], "Bearer s3cret");
}

/// The same over gRPC: an HTTP/2 endpoint of our own answers the OTLP trace export (an empty
/// `ExportTraceServiceResponse`, `grpc-status: 0`) and records its request headers (gRPC
/// metadata).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_headers_are_sent_with_the_grpc_export() {
    use http_body_util::BodyExt as _;
    let seen: std::sync::Arc<std::sync::Mutex<Vec<(String, http::HeaderMap)>>> = Default::default();
    let record = seen.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let record = record.clone();
                        async move {
                            record
                                .lock()
                                .unwrap()
                                .push((req.uri().path().to_string(), req.headers().clone()));
                            let _ = req.into_body().collect().await;
                            let mut trailers = http::HeaderMap::new();
                            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                            // One uncompressed, empty message: flag 0, length 0.
                            let body = http_body_util::Full::new(bytes::Bytes::from_static(&[
                                0, 0, 0, 0, 0,
                            ]))
                            .with_trailers(async move { Some(Ok(trailers)) });
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .header("content-type", "application/grpc")
                                    .body(body)
                                    .unwrap(),
                            )
                        }
                    },
                );
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
            });
        }
    });
    run_app(
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{port}"),
            ),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-scope-orgid=tenant-2".into(),
            ),
        ],
        async |base: &str| {
            reqwest::get(format!("{base}/api/todos")).await.unwrap();
        },
    )
    .await;
    let (path, headers) = poll(
        "a gRPC export at the endpoint",
        Duration::from_secs(30),
        Duration::from_millis(50),
        async || seen.lock().unwrap().first().cloned(),
    )
    .await;
    server.abort();
    assert_eq!(
        path,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    );
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/grpc")
    );
    assert_eq!(headers["x-scope-orgid"], "tenant-2");
}
